package resp

// listCommands are the list family's rows of the command table.
func (s *Server) listCommands() []cmdDef {
	return nil
}
