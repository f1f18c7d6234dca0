"""Local fakes of the channels' servers (Telegram, Zalo) speaking their real wire formats."""
