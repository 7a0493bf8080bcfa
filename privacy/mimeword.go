package privacy

import "mime"

type mimeWordDecoder struct{ d mime.WordDecoder }

// decode undoes RFC 2047 encoded words; the text as it is when that fails.
func (m *mimeWordDecoder) decode(s string) string {
	out, err := m.d.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}
