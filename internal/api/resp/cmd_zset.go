package resp

// zsetCommands are the zset family's rows of the command table.
func (s *Server) zsetCommands() []cmdDef {
	return nil
}
