package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/herald-events/herald/event"
)

// ErrLineTooLong is reported for a JSONL line longer than an event may be.
var ErrLineTooLong = fmt.Errorf("line is longer than an event may be (%d bytes)", event.MaxEventSize)

// ReadJSONL calls fn with each non-blank line of r and its 1-based line
// number. A line longer than event.MaxEventSize is passed as nil data with
// ErrLineTooLong, and reading goes on. An error from fn stops the reading
// and is returned.
func ReadJSONL(r io.Reader, fn func(line int, data []byte, err error) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var buf []byte
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, &buf)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			var lineErr error
			if tooLong {
				line, lineErr = nil, ErrLineTooLong
			}
			if ferr := fn(n, line, lineErr); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", n, err)
		}
	}
}

// readLine reads one line without its end, keeping at most
// event.MaxEventSize bytes; tooLong reports that it had to drop some.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, tooLong bool, err error) {
	*buf = (*buf)[:0]
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(*buf)+len(chunk) > event.MaxEventSize {
			tooLong = true
		} else {
			*buf = append(*buf, chunk...)
		}
		if err != nil || !isPrefix {
			return *buf, tooLong, err
		}
	}
}
