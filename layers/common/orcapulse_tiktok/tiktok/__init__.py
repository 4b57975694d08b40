"""TikTok: the API client, app credentials, PKCE, webhook signatures and event parsing."""
