package profile

// ValidTag reports whether s can be a profile tag: letters, digits, -, _,
// . and :, at most 64 characters.
func ValidTag(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) && c != '.' && c != ':' {
			return false
		}
	}
	return true
}

// ValidAttribute reports whether s can name a custom attribute: letters,
// digits and _, starting with a letter, at most 64 characters.
func ValidAttribute(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) || c == '-' {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
