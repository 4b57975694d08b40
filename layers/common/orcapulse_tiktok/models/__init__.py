"""PynamoDB models of the shared social-media tables."""
