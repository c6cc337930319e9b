package resp

import (
	"slices"
	"sort"
	"strings"
)

// command describes one command: Redis's arity and key-position rules, its
// COMMAND INFO/DOCS metadata, and its handler.
type command struct {
	name  string
	arity int // > 0: exactly; < 0: at least -arity arguments (name included)
	flags []string
	first int // key positions, as in COMMAND INFO
	last  int
	step  int
	acl   []string
	group string
	since string
	doc   string
	// write commands go through engine.Engine.Write; their keys are checked
	// against the key size limit before the handler runs.
	write  bool
	noAuth bool
	// collection: a hash, list, set or sorted-set command (wrongtype.go).
	collection bool
	// blocking: the command may wait for another client's write (BLPOP,
	// BZPOPMIN, …: blocking.go).
	blocking bool
	// scripted commands (EVAL, FCALL, …) touch keys through the script
	// they run; scriptWrites ones may write (not the *_RO variants).
	scripted, scriptWrites bool
	fn                     func(c *client, args [][]byte)
	// inLoop: the event loop may run it in place (inline.go); inLoopReads:
	// it reads the node's state; inLoopWrites: it writes (writesInLoop).
	inLoop, inLoopReads, inLoopWrites bool

	metrics *cmdMetrics
	stat    cmdStat // INFO commandstats (info_stats.go)
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// keys returns the key arguments by the command's key positions.
func (cmd *command) keys(args [][]byte) [][]byte {
	var out [][]byte
	for i, ok := cmd.firstKey(args); ok; i, ok = cmd.nextKey(args, i) {
		out = append(out, args[i])
	}
	return out
}

// firstKey and nextKey walk the positions of args that hold keys (by the
// command's first/last/step) without building a list: the dispatcher
// checks every command's keys.
func (cmd *command) firstKey(args [][]byte) (int, bool) {
	if cmd.first <= 0 {
		return 0, false
	}
	return cmd.first, cmd.first <= cmd.lastKey(args)
}

func (cmd *command) nextKey(args [][]byte, i int) (int, bool) {
	i += max(cmd.step, 1)
	return i, i <= cmd.lastKey(args)
}

func (cmd *command) lastKey(args [][]byte) int {
	last := cmd.last
	if last < 0 {
		last = len(args) + last
	}
	return min(last, len(args)-1)
}

// cmdDef is one command table row.
type cmdDef struct {
	name              string
	arity             int
	flags             string // space separated
	first, last, step int
	group, since, doc string
	fn                func(c *client, args [][]byte)
}

// commandTable builds the server's command table.
func (s *Server) commandTable() map[string]*command {
	defs := []cmdDef{
		// connection
		{"ping", -1, "fast", 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.", s.cmdPing},
		{"echo", 2, "fast", 0, 0, 0, "connection", "1.0.0", "Returns the given string.", s.cmdEcho},
		{"hello", -1, "noauth fast", 0, 0, 0, "connection", "6.0.0", "Handshakes with the Redis server.", s.cmdHello},
		{"auth", -2, "noauth fast", 0, 0, 0, "connection", "1.0.0", "Authenticates the connection.", s.cmdAuth},
		{"select", 2, "fast", 0, 0, 0, "connection", "1.0.0", "Changes the selected database.", s.cmdSelect},
		{"quit", -1, "noauth fast", 0, 0, 0, "connection", "1.0.0", "Closes the connection.", s.cmdQuit},
		{"reset", 1, "noauth fast", 0, 0, 0, "connection", "6.2.0", "Resets the connection.", s.cmdReset},
		{"client", -2, "", 0, 0, 0, "connection", "2.4.0", "A container for client connection commands.", s.cmdClient},
		{"command", -1, "", 0, 0, 0, "server", "2.8.13", "Returns detailed information about all commands.", s.cmdCommand},
		// strings
		{"get", 2, "readonly fast", 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.", s.cmdGet},
		{"set", -3, "write denyoom", 1, 1, 1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", s.cmdSet},
		{"setnx", 3, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", s.cmdSetNX},
		{"setex", 4, "write denyoom", 1, 1, 1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", s.cmdSetEX},
		{"psetex", 4, "write denyoom", 1, 1, 1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", s.cmdPSetEX},
		{"getset", 3, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", s.cmdGetSet},
		{"getdel", 2, "write fast", 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", s.cmdGetDel},
		{"getex", -2, "write fast", 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", s.cmdGetEx},
		{"mget", -2, "readonly fast", 1, -1, 1, "string", "1.0.0", "Atomically returns the string values of one or more keys.", s.cmdMGet},
		{"mset", -3, "write denyoom", 1, -1, 2, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", s.cmdMSet},
		{"msetnx", -3, "write denyoom", 1, -1, 2, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", s.cmdMSetNX},
		{"incr", 2, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", s.cmdIncr},
		{"decr", 2, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", s.cmdDecr},
		{"incrby", 3, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", s.cmdIncrBy},
		{"decrby", 3, "write denyoom fast", 1, 1, 1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", s.cmdDecrBy},
		{"incrbyfloat", 3, "write denyoom fast", 1, 1, 1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", s.cmdIncrByFloat},
		{"append", 3, "write denyoom fast", 1, 1, 1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", s.cmdAppend},
		{"strlen", 2, "readonly fast", 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.", s.cmdStrlen},
		{"getrange", 4, "readonly", 1, 1, 1, "string", "2.4.0", "Returns a substring of the string stored at a key.", s.cmdGetRange},
		{"substr", 4, "readonly", 1, 1, 1, "string", "1.0.0", "Returns a substring from a string value.", s.cmdGetRange},
		{"setrange", 4, "write denyoom", 1, 1, 1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", s.cmdSetRange},
		{"lcs", -3, "readonly", 1, 2, 1, "string", "7.0.0", "Finds the longest common substring.", s.cmdLCS},
		// bitmaps (strings read and written bit by bit)
		{"setbit", 4, "write denyoom", 1, 1, 1, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", s.cmdSetBit},
		{"getbit", 3, "readonly fast", 1, 1, 1, "bitmap", "2.2.0", "Returns a bit value by offset.", s.cmdGetBit},
		{"bitcount", -2, "readonly", 1, 1, 1, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", s.cmdBitCount},
		{"bitpos", -3, "readonly", 1, 1, 1, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", s.cmdBitPos},
		{"bitop", -4, "write denyoom", 2, -1, 1, "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", s.cmdBitOp},
		{"bitfield", -2, "write denyoom", 1, 1, 1, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", s.cmdBitField},
		{"bitfield_ro", -2, "readonly fast", 1, 1, 1, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", s.cmdBitFieldRO},
		// keys
		{"del", -2, "write", 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.", s.cmdDel},
		{"unlink", -2, "write fast", 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.", s.cmdDel},
		{"exists", -2, "readonly fast", 1, -1, 1, "generic", "1.0.0", "Determines whether one or more keys exist.", s.cmdExists},
		{"type", 2, "readonly fast", 1, 1, 1, "generic", "1.0.0", "Determines the type of value stored at a key.", s.cmdType},
		{"rename", 3, "write", 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.", s.cmdRename},
		{"renamenx", 3, "write fast", 1, 2, 1, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", s.cmdRenameNX},
		{"copy", -3, "write denyoom", 1, 2, 1, "generic", "6.2.0", "Copies the value of a key to a new key.", s.cmdCopy},
		{"touch", -2, "readonly fast", 1, -1, 1, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", s.cmdExists},
		{"expire", -3, "write fast", 1, 1, 1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", s.cmdExpire},
		{"pexpire", -3, "write fast", 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", s.cmdExpire},
		{"expireat", -3, "write fast", 1, 1, 1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", s.cmdExpire},
		{"pexpireat", -3, "write fast", 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", s.cmdExpire},
		{"expiretime", 2, "readonly fast", 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", s.cmdTTL},
		{"pexpiretime", 2, "readonly fast", 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", s.cmdTTL},
		{"ttl", 2, "readonly fast", 1, 1, 1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", s.cmdTTL},
		{"pttl", 2, "readonly fast", 1, 1, 1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", s.cmdTTL},
		{"persist", 2, "write fast", 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.", s.cmdPersist},
		{"scan", -2, "readonly", 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.", s.cmdScan},
		{"keys", 2, "readonly", 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.", s.cmdKeys},
		{"randomkey", 1, "readonly", 0, 0, 0, "generic", "1.0.0", "Returns a random key name from the database.", s.cmdRandomKey},
		{"dbsize", 1, "readonly fast", 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database.", s.cmdDBSize},
		{"flushdb", -1, "write", 0, 0, 0, "server", "1.0.0", "Removes all keys from the current database.", s.cmdFlush},
		{"flushall", -1, "write", 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.", s.cmdFlush},
		// server
		{"info", -1, "loading stale", 0, 0, 0, "server", "1.0.0", "Returns information and statistics about the server.", s.cmdInfo},
		{"role", 1, "noscript loading stale fast", 0, 0, 0, "server", "2.8.12", "Returns the replication role.", s.cmdRole},
		{"wait", 3, "", 0, 0, 0, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", s.cmdWait},
		{"time", 1, "loading stale fast", 0, 0, 0, "server", "2.6.0", "Returns the server time.", s.cmdTime},
		// transactions (tx.go)
		{"multi", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "transactions", "1.2.0", "Starts a transaction.", s.cmdMulti},
		{"exec", 1, "noscript loading stale skip_slowlog", 0, 0, 0, "transactions", "1.2.0", "Executes all commands in a transaction.", s.cmdExec},
		{"discard", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "transactions", "2.0.0", "Discards a transaction.", s.cmdDiscard},
		{"watch", -2, "noscript loading stale fast allow_busy", 1, -1, 1, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", s.cmdWatch},
		{"unwatch", 1, "noscript loading stale fast allow_busy", 0, 0, 0, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", s.cmdUnwatch},
		{"config", -2, "", 0, 0, 0, "server", "2.0.0", "A container for server configuration commands.", s.cmdConfig},
		{"memory", -2, "", 0, 0, 0, "server", "4.0.0", "A container for memory diagnostics commands.", s.cmdMemory},
		{"object", -2, "", 0, 0, 0, "generic", "2.2.3", "A container for object introspection commands.", s.cmdObject},
		{"slowlog", -2, "", 0, 0, 0, "server", "2.2.12", "A container for slow log commands.", s.cmdSlowlog},
		// scripting (cmd_script.go)
		{"eval", -3, "noscript skip_monitor may_replicate no_mandatory_keys stale", 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script.", s.cmdEval},
		{"evalsha", -3, "noscript skip_monitor may_replicate no_mandatory_keys stale", 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", s.cmdEval},
		{"eval_ro", -3, "noscript skip_monitor no_mandatory_keys stale readonly", 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", s.cmdEval},
		{"evalsha_ro", -3, "noscript skip_monitor no_mandatory_keys stale readonly", 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", s.cmdEval},
		{"fcall", -3, "noscript skip_monitor may_replicate no_mandatory_keys stale", 0, 0, 0, "scripting", "7.0.0", "Invokes a function.", s.cmdFCall},
		{"fcall_ro", -3, "noscript skip_monitor no_mandatory_keys stale readonly", 0, 0, 0, "scripting", "7.0.0", "Invokes a read-only function.", s.cmdFCall},
		{"script", -2, "", 0, 0, 0, "scripting", "2.6.0", "A container for Lua scripts management commands.", s.cmdScript},
		{"function", -2, "", 0, 0, 0, "scripting", "7.0.0", "A container for function commands.", s.cmdFunction},
		// replicant extensions
		{"replicant.token", 1, "fast", 0, 0, 0, "replicant", "0.1.0", "Returns this connection's token EPOCH:LSN.", s.cmdToken},
		{"replicant.session", 2, "fast", 0, 0, 0, "replicant", "0.1.0", "Raises this connection's token floor for session reads.", s.cmdSession},
		{"replicant.consistency", -1, "fast", 0, 0, 0, "replicant", "0.1.0", "Gets or sets this connection's read consistency.", s.cmdConsistency},
		{"replicant.status", 1, "", 0, 0, 0, "replicant", "0.1.0", "Returns the node's status as JSON.", s.cmdStatus},
		{"replicant.quorum", 3, "fast", 0, 0, 0, "replicant", "0.2.0", "Sets this connection's leaderless write and read quorums (W R).", s.cmdQuorum},
		{"replicant.siblings", 2, "readonly", 1, 1, 1, "replicant", "0.2.0", "Returns a leaderless key's causal context and sibling values.", s.cmdSiblings},
		{"replicant.context", 2, "fast", 0, 0, 0, "replicant", "0.2.0", "The next write supersedes what this causal context saw (leaderless).", s.cmdContext},
	}
	m := make(map[string]*command, len(defs))
	// Each collection type's family registers its commands in its own file.
	defs = append(defs, s.hashCommands()...)
	defs = append(defs, s.setCommands()...)
	defs = append(defs, s.listCommands()...)
	defs = append(defs, s.zsetCommands()...)
	for _, d := range defs {
		cmd := &command{
			name: d.name, arity: d.arity, first: d.first, last: d.last, step: d.step,
			group: d.group, since: d.since, doc: d.doc, fn: d.fn,
			collection: collectionGroups[d.group],
		}
		for _, f := range strings.Fields(d.flags) {
			cmd.flags = append(cmd.flags, f)
			switch f {
			case "write":
				cmd.write = true
			case "noauth":
				cmd.noAuth = true
			}
		}
		switch {
		case cmd.write:
			cmd.acl = append(cmd.acl, "@write")
		case slices.Contains(cmd.flags, "readonly"):
			cmd.acl = append(cmd.acl, "@read")
		}
		if cat, ok := map[string]string{"string": "@string", "generic": "@keyspace", "hash": "@hash", "list": "@list",
			"set": "@set", "sorted-set": "@sortedset", "bitmap": "@bitmap", "scripting": "@scripting"}[d.group]; ok {
			cmd.acl = append(cmd.acl, cat)
		}
		if slices.Contains(cmd.flags, "fast") {
			cmd.acl = append(cmd.acl, "@fast")
		} else {
			cmd.acl = append(cmd.acl, "@slow")
		}
		if d.group == "scripting" {
			cmd.acl = append(cmd.acl, "@scripting")
			switch d.name {
			case "eval", "evalsha", "fcall":
				cmd.scripted, cmd.scriptWrites = true, true
			case "eval_ro", "evalsha_ro", "fcall_ro":
				cmd.scripted = true
			}
		}
		if slices.Contains(cmd.flags, "blocking") {
			cmd.blocking = true
			cmd.acl = append(cmd.acl, "@blocking")
		}
		if d.group == "transactions" {
			cmd.acl = append(cmd.acl, "@transaction")
		}
		if d.group == "connection" {
			cmd.acl = append(cmd.acl, "@connection")
		}
		m[d.name] = cmd
	}
	return m
}

// sortedCommands returns the command table sorted by name.
func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.cmds))
	for _, c := range s.cmds {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
