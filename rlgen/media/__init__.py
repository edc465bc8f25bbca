"""Images and videos for any logger: grids, PNG copies, agent videos (helpers, not callbacks)."""
