package resp

// hashCommands are the hash family's rows of the command table.
func (s *Server) hashCommands() []cmdDef {
	return nil
}
