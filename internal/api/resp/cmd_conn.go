package resp

import (
	"crypto/subtle"
	"strings"

	"github.com/replicant-db/replicant/internal/engine"
)

// redisVersion is the Redis version replicant reports to clients.
const redisVersion = "7.2.0"

func (s *Server) cmdPing(c *client, args [][]byte) {
	switch len(args) {
	case 1:
		c.simple("PONG")
	case 2:
		c.bulk(args[1])
	default:
		c.arityErr("ping")
	}
}

func (s *Server) cmdEcho(c *client, args [][]byte) { c.bulk(args[1]) }

// checkPassword reports whether user/pass authenticate. The only user is
// "default"; without requirepass it accepts any password (as Redis's
// "nopass" default user does).
func (s *Server) checkPassword(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	want := s.b.Settings().RequirePass
	if want == "" {
		return true
	}
	return subtle.ConstantTimeCompare(pass, []byte(want)) == 1
}

func (s *Server) cmdAuth(c *client, args [][]byte) {
	if len(args) > 3 {
		c.err(msgSyntax)
		return
	}
	user, pass := []byte("default"), args[1]
	if len(args) == 2 {
		if s.b.Settings().RequirePass == "" {
			c.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	} else {
		user, pass = args[1], args[2]
	}
	if !s.checkPassword(user, pass) {
		c.err(msgWrongPass)
		return
	}
	c.authed = true
	c.ok()
}

func validClientName(name []byte) bool {
	for _, b := range name {
		if b < '!' || b > '~' {
			return false
		}
	}
	return true
}

func (s *Server) cmdHello(c *client, args [][]byte) {
	ver := int64(0)
	next := 1
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.err("NOPROTO unsupported protocol version")
			return
		}
		ver, next = v, 2
	}
	var user, pass, name []byte
	setName := false
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		opt := strings.ToLower(string(args[j]))
		switch {
		case opt == "auth" && more >= 2:
			user, pass = args[j+1], args[j+2]
			j += 2
		case opt == "setname" && more >= 1:
			name, setName = args[j+1], true
			if !validClientName(name) {
				c.err("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			j++
		default:
			c.errorf("ERR Syntax error in HELLO option '%s'", args[j])
			return
		}
	}
	if user != nil {
		if !s.checkPassword(user, pass) {
			c.err(msgWrongPass)
			return
		}
		c.authed = true
	}
	if !c.authed {
		c.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	c.pubMu.Lock()
	if setName {
		c.name = string(name)
	}
	if ver != 0 {
		c.proto = int(ver)
	}
	c.pubMu.Unlock()
	role := "master"
	if s.b.Status().Role == "follower" {
		role = "replica"
	}
	c.mapHeader(7)
	c.bulkString("server")
	c.bulkString("redis")
	c.bulkString("version")
	c.bulkString(redisVersion)
	c.bulkString("proto")
	c.int(int64(c.proto))
	c.bulkString("id")
	c.int(int64(c.id))
	c.bulkString("mode")
	c.bulkString("standalone")
	c.bulkString("role")
	c.bulkString(role)
	c.bulkString("modules")
	c.array(0)
}

func (s *Server) cmdSelect(c *client, args [][]byte) {
	db, ok := parseInt(args[1])
	if !ok || db < -1<<31 || db >= 1<<31 {
		c.err(msgNotInt)
		return
	}
	if db != 0 {
		c.err(msgDBRange)
		return
	}
	c.ok()
}

func (s *Server) cmdQuit(c *client, _ [][]byte) {
	c.ok()
	c.quit = true
	_ = c.conn.Close()
}

func (s *Server) cmdReset(c *client, _ [][]byte) {
	c.pubMu.Lock()
	c.proto = 2
	c.name = ""
	c.noEvict, c.noTouch = false, false
	c.pubMu.Unlock()
	c.authed = s.b.Settings().RequirePass == ""
	c.cons = engine.Consistency{}
	c.token = engine.Token{}
	c.floor = engine.Token{}
	c.lastWrite = engine.Token{}
	c.ctx, c.causal = c.base, ""
	c.txReset()
	c.simple("RESET")
}

func (s *Server) cmdCommand(c *client, args [][]byte) {
	if len(args) == 1 {
		cmds := s.sortedCommands()
		c.array(len(cmds))
		for _, cmd := range cmds {
			c.commandInfo(cmd)
		}
		return
	}
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "count":
		if len(args) != 2 {
			c.arityErr("command|count")
			return
		}
		c.int(int64(len(s.cmds)))
	case "list":
		cmds := s.sortedCommands()
		c.array(len(cmds))
		for _, cmd := range cmds {
			c.bulkString(cmd.name)
		}
	case "info":
		if len(args) == 2 {
			cmds := s.sortedCommands()
			c.array(len(cmds))
			for _, cmd := range cmds {
				c.commandInfo(cmd)
			}
			return
		}
		c.array(len(args) - 2)
		for _, name := range args[2:] {
			if cmd := s.cmds[strings.ToLower(string(name))]; cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.null()
			}
		}
	case "docs":
		var cmds []*command
		if len(args) == 2 {
			cmds = s.sortedCommands()
		} else {
			for _, name := range args[2:] {
				if cmd := s.cmds[strings.ToLower(string(name))]; cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		c.mapHeader(len(cmds))
		for _, cmd := range cmds {
			c.bulkString(cmd.name)
			c.mapHeader(3)
			c.bulkString("summary")
			c.bulkString(cmd.doc)
			c.bulkString("since")
			c.bulkString(cmd.since)
			c.bulkString("group")
			c.bulkString(cmd.group)
		}
	default:
		c.errorf("ERR unknown subcommand '%.128s'. Try COMMAND HELP.", args[1])
	}
}

// commandInfo writes one COMMAND INFO entry in Redis 7's ten-field form.
func (c *client) commandInfo(cmd *command) {
	c.array(10)
	c.bulkString(cmd.name)
	c.int(int64(cmd.arity))
	c.setHeader(len(cmd.flags))
	for _, f := range cmd.flags {
		c.simple(f)
	}
	c.int(int64(cmd.first))
	c.int(int64(cmd.last))
	c.int(int64(cmd.step))
	c.setHeader(len(cmd.acl))
	for _, a := range cmd.acl {
		c.simple(a)
	}
	c.array(0) // tips
	c.array(0) // key specs
	c.array(0) // subcommands
}
