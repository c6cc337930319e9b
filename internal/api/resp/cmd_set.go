package resp

// setCommands are the set family's rows of the command table.
func (s *Server) setCommands() []cmdDef {
	return nil
}
