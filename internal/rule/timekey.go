package rule

import "time"

// timeKey is the form in which date-valued attributes are compared:
// "YYYY-MM-DDTHH:MM:SS.mmm", fixed width, so byte order is time order. Go and
// both SQL dialects derive it with the same rules (attrTimeKey and its SQL
// twins in sql.go), and rule values are turned into keys in Go only.
type timeKey [23]byte

var (
	minKey = timeKey([]byte("0000-00-00T00:00:00.000"))
	maxKey = timeKey([]byte("9999-99-99T99:99:99.999"))
)

// keyFromMillis gives the key of an instant; instants outside years
// 0000-9999 get the smallest or largest key any attribute can have.
func keyFromMillis(ms int64) timeKey {
	t := time.UnixMilli(ms).UTC()
	y, mo, d := t.Date()
	switch {
	case y < 0:
		return minKey
	case y > 9999:
		return maxKey
	}
	h, mi, s := t.Clock()
	var k timeKey
	put := func(at, v, width int) {
		for i := at + width - 1; i >= at; i-- {
			k[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	k[4] = '-'
	put(5, int(mo), 2)
	k[7] = '-'
	put(8, d, 2)
	k[10] = 'T'
	put(11, h, 2)
	k[13] = ':'
	put(14, mi, 2)
	k[16] = ':'
	put(17, s, 2)
	k[19] = '.'
	put(20, t.Nanosecond()/1e6, 3)
	return k
}

// attrTimeKey reads an attribute string as a date. Accepted shapes, ASCII
// digits only and with no calendar check:
//
//	YYYY-MM-DD                      (midnight UTC)
//	YYYY-MM-DDTHH:MM:SSZ
//	YYYY-MM-DDTHH:MM:SS.<1-9 digits>Z (cut to milliseconds)
func attrTimeKey(s string) (timeKey, bool) {
	var k timeKey
	n := len(s)
	if n < 10 || !isDate(s) {
		return k, false
	}
	copy(k[:], s[:10])
	copy(k[10:], "T00:00:00.000")
	if n == 10 {
		return k, true
	}
	if n < 20 || s[10] != 'T' || !isClock(s[11:19]) || s[n-1] != 'Z' {
		return k, false
	}
	copy(k[:19], s)
	if n == 20 {
		return k, true
	}
	if s[19] != '.' || n < 22 || n > 30 {
		return k, false
	}
	frac := s[20 : n-1]
	for i := 0; i < len(frac); i++ {
		if !isDigit(frac[i]) {
			return k, false
		}
	}
	copy(k[20:], frac)
	return k, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDate(s string) bool {
	return isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) && s[4] == '-' &&
		isDigit(s[5]) && isDigit(s[6]) && s[7] == '-' && isDigit(s[8]) && isDigit(s[9])
}

func isClock(s string) bool {
	return isDigit(s[0]) && isDigit(s[1]) && s[2] == ':' && isDigit(s[3]) && isDigit(s[4]) &&
		s[5] == ':' && isDigit(s[6]) && isDigit(s[7])
}
