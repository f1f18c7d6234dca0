"""Runtime and composition root of hocvuso: settings, CLI, channels."""
