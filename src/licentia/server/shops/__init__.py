"""Web-shop gateways: paid sales from Stripe and Paddle become orders (docs/integrations.md)."""
