"""OrcaPulse TikTok channel: the domain shared by every Lambda function through the layer."""
