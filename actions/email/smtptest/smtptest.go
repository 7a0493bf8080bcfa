// Package smtptest runs a real SMTP server in-process on 127.0.0.1 for
// tests: it records every message it accepts and can require
// authentication, offer TLS, or answer commands with chosen error replies.
//
//	srv := smtptest.NewServer(t, smtptest.WithAuth("user", "pass"))
//	sender, _ := email.NewSMTP(email.SMTPConfig{URL: srv.URL()})
//	...
//	msgs := srv.WaitFor(t, 1, 5*time.Second)
//
// The server is built on github.com/emersion/go-smtp and closed when the
// test ends.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To holds the envelope recipients (RCPT TO).
	To []string
	// Data is the message as transmitted, headers and body.
	Data []byte
	// Username is the authenticated user, empty without AUTH.
	Username string
	// TLS reports whether the session was encrypted (STARTTLS or implicit).
	TLS bool
	// Helo is the name the client gave with EHLO/HELO.
	Helo string
}

// Parse parses Data as an RFC 5322 message.
func (m Message) Parse() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Data))
}

// Command names an SMTP command whose reply can be replaced.
type Command string

// Commands whose replies can be replaced with SetReply or WithReply.
const (
	Mail Command = "MAIL"
	Rcpt Command = "RCPT"
	Data Command = "DATA" // the reply after the message data
)

// Reply is an error reply the server gives instead of accepting a command.
type Reply struct {
	// Code is the SMTP reply code, 400 to 599.
	Code int
	// Message is the reply text; empty means a generic one.
	Message string
	// Times is how many commands get this reply before the server accepts
	// again; zero means every command.
	Times int
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server advertise AUTH and refuse MAIL (530) until the
// client authenticated as username with password. Mechanisms default to
// PLAIN; "PLAIN" and "LOGIN" are supported.
func WithAuth(username, password string, mechanisms ...string) Option {
	return func(s *Server) {
		s.username, s.password = username, password
		s.mechanisms = []string{sasl.Plain}
		if len(mechanisms) > 0 {
			s.mechanisms = mechanisms
		}
	}
}

// WithSTARTTLS makes the server offer STARTTLS with a freshly generated
// self-signed certificate for 127.0.0.1 and localhost.
func WithSTARTTLS() Option {
	return func(s *Server) { s.startTLS = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte, as on
// port 465 (smtps://), with a self-signed certificate.
func WithImplicitTLS() Option {
	return func(s *Server) { s.implicitTLS = true }
}

// WithReply makes the server answer cmd with r; see SetReply.
func WithReply(cmd Command, r Reply) Option {
	return func(s *Server) { s.replies[cmd] = r }
}

// Server is a running test SMTP server.
type Server struct {
	username, password string
	mechanisms         []string
	startTLS           bool
	implicitTLS        bool

	srv       *smtp.Server
	listener  net.Listener
	served    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	replies  map[Command]Reply
	messages []Message
	arrived  chan struct{} // closed and replaced whenever a message arrives
}

// NewServer starts a server on 127.0.0.1 with a free port and closes it
// when the test ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		replies: make(map[Command]Reply),
		arrived: make(chan struct{}),
		served:  make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smtptest.localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if s.startTLS || s.implicitTLS {
		cfg, err := selfSignedTLS()
		if err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		srv.TLSConfig = cfg
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if s.implicitTLS {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.srv, s.listener = srv, l
	go func() {
		defer close(s.served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(s.Close)
	return s
}

// Addr returns host:port of the server.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL returns a URL for the server: smtp:// or smtps:// with the
// credentials of WithAuth, if any.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.implicitTLS {
		u.Scheme = "smtps"
	}
	if s.username != "" {
		u.User = url.UserPassword(s.username, s.password)
	}
	return u.String()
}

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitFor waits until at least n messages arrived and returns all of them;
// it fails the test after timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			msgs := slices.Clone(s.messages)
			s.mu.Unlock()
			return msgs
		}
		arrived, got := s.arrived, len(s.messages)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("smtptest: %d message(s) arrived within %s, want %d", got, timeout, n)
			return nil
		}
	}
}

// SetReply makes the server answer cmd with r instead of accepting it, for
// r.Times commands or for good. A zero Reply restores acceptance.
func (s *Server) SetReply(cmd Command, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Code == 0 {
		delete(s.replies, cmd)
		return
	}
	s.replies[cmd] = r
}

// Close stops the server: the listener and every open connection. Clients
// then get "connection refused". It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		_ = s.srv.Close()
		// go-smtp closes only listeners that Serve registered already.
		_ = s.listener.Close()
		<-s.served
	})
}

// reply returns the error to answer cmd with, or nil to accept it.
func (s *Server) reply(cmd Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.replies[cmd]
	if !ok {
		return nil
	}
	if r.Times > 0 {
		if r.Times == 1 {
			delete(s.replies, cmd)
		} else {
			r.Times--
			s.replies[cmd] = r
		}
	}
	msg := r.Message
	if msg == "" {
		msg = fmt.Sprintf("smtptest: %s refused with %d", cmd, r.Code)
	}
	return &smtp.SMTPError{
		Code:         r.Code,
		EnhancedCode: smtp.EnhancedCode{r.Code / 100, 0, 0},
		Message:      msg,
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{srv: s, helo: c.Hostname(), tls: isTLS}, nil
}

// session is one SMTP session; go-smtp calls it from one goroutine.
type session struct {
	srv      *Server
	helo     string
	tls      bool
	username string
	from     string
	to       []string
}

var errAuthRequired = &smtp.SMTPError{
	Code:         530,
	EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message:      "Authentication required",
}

// AuthMechanisms advertises AUTH only when the server requires it.
func (ss *session) AuthMechanisms() []string {
	return ss.srv.mechanisms
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if ss.srv.username == "" || username != ss.srv.username || password != ss.srv.password {
			return smtp.ErrAuthFailed
		}
		ss.username = username
		return nil
	}
	if !slices.Contains(ss.srv.mechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtp.ErrAuthFailed
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.username != "" && ss.username == "" {
		return errAuthRequired
	}
	if err := ss.srv.reply(Mail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.srv.reply(Rcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.srv.reply(Data); err != nil {
		return err
	}
	ss.srv.record(Message{
		From:     ss.from,
		To:       slices.Clone(ss.to),
		Data:     data,
		Username: ss.username,
		TLS:      ss.tls,
		Helo:     ss.helo,
	})
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// only implements as a client.
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		// Initial response carries the user name.
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.step++
		l.username = string(response)
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.username, string(response))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}

var _ smtp.AuthSession = (*session)(nil)
