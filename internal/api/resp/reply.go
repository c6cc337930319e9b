package resp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// replyError is an error reply decided inside a write closure; its text is
// sent as is (it starts with the error kind, e.g. "ERR no such key").
type replyError string

func (e replyError) Error() string { return string(e) }

const (
	msgNotInt       = "ERR value is not an integer or out of range"
	msgNotFloat     = "ERR value is not a valid float"
	msgSyntax       = "ERR syntax error"
	msgOverflow     = "ERR increment or decrement would overflow"
	msgNoSuchKey    = "ERR no such key"
	msgDBRange      = "ERR DB index is out of range"
	msgSameObject   = "ERR source and destination objects are the same"
	msgInvalidCursr = "ERR invalid cursor"
	msgNoAuth       = "NOAUTH Authentication required."
	msgWrongPass    = "WRONGPASS invalid username-password pair or user is disabled."
	msgOffsetRange  = "ERR offset is out of range"
	msgTooBig       = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	msgNaN          = "ERR increment would produce NaN or Infinity"
)

func expireTimeErr(cmd string) replyError {
	return replyError("ERR invalid expire time in '" + cmd + "' command")
}

// err writes an error reply (msg starts with the error kind).
func (c *client) err(msg string) {
	c.failed = true
	c.s.stats.errored(msg)
	c.conn.WriteError(msg)
}

func (c *client) errorf(format string, args ...any) { c.err(fmt.Sprintf(format, args...)) }

func (c *client) arityErr(name string) {
	c.errorf("ERR wrong number of arguments for '%s' command", name)
}

// backendErr answers an error returned by the backend or a write closure.
func (c *client) backendErr(err error) {
	if c.exec != nil {
		c.exec.fail(err)
	}
	var re replyError
	var nl *engine.NotLeaderError
	var le *engine.LimitError
	switch {
	case errors.As(err, &re):
		c.err(string(re))
	case errors.Is(err, datatype.ErrWrongType):
		c.err(msgWrongType)
	case errors.Is(err, datatype.ErrUnsupported):
		c.err("ERR collection types (hash, list, set, sorted set) are not supported in " + c.s.mode() + " mode")
	case errors.As(err, &nl):
		c.err(readOnlyText(nl))
	case errors.As(err, &le):
		c.err("ERR " + le.Error())
	case errors.Is(err, engine.ErrLoading):
		// Redis's own error for a server still loading its data set.
		c.err(strings.Replace(err.Error(), "LOADING: ", "LOADING ", 1))
	case errors.Is(err, engine.ErrStale):
		c.err("TRYAGAIN " + err.Error())
	case errors.Is(err, engine.ErrDiskFull):
		// Redis answers writes it cannot persist with MISCONF.
		c.err("MISCONF " + err.Error())
	case errors.Is(err, engine.ErrLostWrite):
		c.err("ERR " + err.Error())
	case errors.Is(err, engine.ErrNoQuorum):
		c.err(err.Error()) // "NOQUORUM write stored on 1 of 3 replicas, …"
	default:
		c.err("ERR " + err.Error())
	}
}

// readOnlyText is the reply to a write on a node that is not the leader.
func readOnlyText(nl *engine.NotLeaderError) string {
	if nl.LeaderID == "" {
		return "READONLY You can't write against a read only replica. leader unknown"
	}
	return fmt.Sprintf("READONLY You can't write against a read only replica. leader=%s resp=%s", nl.LeaderID, nl.LeaderRESP)
}

func (c *client) ok()                 { c.conn.WriteString("OK") }
func (c *client) simple(s string)     { c.conn.WriteString(s) }
func (c *client) int(n int64)         { c.conn.WriteInt64(n) }
func (c *client) bulk(b []byte)       { c.conn.WriteBulk(b) }
func (c *client) bulkString(s string) { c.conn.WriteBulkString(s) }
func (c *client) array(n int)         { c.conn.WriteArray(n) }

// null writes the null reply of the connection's protocol.
func (c *client) null() {
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("_\r\n"))
		return
	}
	c.conn.WriteNull()
}

// mapHeader starts a map of n pairs (a flat array of 2n in RESP2).
func (c *client) mapHeader(n int) {
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("%" + strconv.Itoa(n) + "\r\n"))
		return
	}
	c.conn.WriteArray(2 * n)
}

// setHeader starts a set of n elements (an array in RESP2).
func (c *client) setHeader(n int) {
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("~" + strconv.Itoa(n) + "\r\n"))
		return
	}
	c.conn.WriteArray(n)
}

// verbatim writes a text reply: a verbatim string in RESP3 (as Redis does
// for INFO and CLIENT INFO), a bulk string in RESP2.
func (c *client) verbatim(s string) {
	if c.proto == 3 {
		b := make([]byte, 0, len(s)+20)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(len(s)+4), 10)
		b = append(b, "\r\ntxt:"...)
		b = append(b, s...)
		b = append(b, '\r', '\n')
		c.conn.WriteRaw(b)
		return
	}
	c.conn.WriteBulkString(s)
}

// observe raises the connection's token to t (later epoch first: see
// engine.Token.After).
func (c *client) observe(t engine.Token) { c.token = c.token.Later(t) }

// readFloor is the oldest state a read on c may show: REPLICANT.SESSION's
// floor binds every read on the connection; the tokens the connection
// observed itself bind session reads.
func (c *client) readFloor() engine.Token {
	floor := c.floor
	if c.cons.Level == engine.LevelSession {
		floor = floor.Later(c.token)
	}
	return floor
}

// read opens a reader at the connection's consistency (and, for session
// consistency, no older than its token). On failure it has answered.
func (c *client) read() (engine.Reader, bool) {
	if c.exec != nil {
		return c.exec.r, true // the transaction's state (tx.go)
	}
	var r engine.Reader
	var err error
	if c.pre.set { // the event loop read already (inline.go)
		r, err = c.pre.r, c.pre.err
		c.pre = preRead{}
	} else {
		r, err = c.s.b.Read(c.ctx, c.cons, c.readFloor())
	}
	var nl *engine.NotLeaderError
	if errors.As(err, &nl) {
		// Only linearizable reads need the leader.
		c.errorf("ERR linearizable reads are served by the leader (leader=%s resp=%s); use REPLICANT.CONSISTENCY session, bounded or eventual to read from this replica", nl.LeaderID, nl.LeaderRESP)
		return nil, false
	}
	if err != nil {
		c.backendErr(err)
		return nil, false
	}
	c.observe(r.Token())
	return c.s.reader(r), true
}

// cmdMetrics are one command's metric series, created the first time the
// command is seen: a series per known command from the start would make an
// idle node's /metrics mostly zero-filled histograms of commands nobody
// sends (about 1 400 of its 1 750 lines for the whole command table).
type cmdMetrics struct {
	m        *engine.Metrics
	name     string
	resolved atomic.Pointer[cmdSeries]
}

// cmdSeries are one command's resolved children (both results at once, so
// that an error rate is 0 rather than absent once a command was seen).
type cmdSeries struct {
	ok, failed prometheus.Counter
	latency    prometheus.Observer
}

func newCmdMetrics(m *engine.Metrics, name string) *cmdMetrics {
	if m == nil || m.Ops == nil || m.OpLatency == nil {
		return nil
	}
	return &cmdMetrics{m: m, name: name}
}

func (m *cmdMetrics) observe(failed bool, d time.Duration) {
	if m == nil {
		return
	}
	s := m.resolved.Load()
	if s == nil {
		// Racing first calls resolve the same children (WithLabelValues
		// returns the existing ones): whichever is stored, counts go to
		// the same series.
		s = &cmdSeries{
			ok:      m.m.Ops.WithLabelValues("resp", m.name, "ok"),
			failed:  m.m.Ops.WithLabelValues("resp", m.name, "error"),
			latency: m.m.OpLatency.WithLabelValues("resp", m.name),
		}
		m.resolved.Store(s)
	}
	if failed {
		s.failed.Inc()
	} else {
		s.ok.Inc()
	}
	s.latency.Observe(d.Seconds())
}

// double writes a double: RESP3's double type, a bulk string in RESP2 (as
// Redis's addReplyDouble).
func (c *client) double(f float64) {
	s := strconv.FormatFloat(f, 'g', 17, 64)
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("," + s + "\r\n"))
		return
	}
	c.conn.WriteBulkString(s)
}
