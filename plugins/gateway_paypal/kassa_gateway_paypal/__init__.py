"""PayPal payment gateway for Kassa (Orders v2, USD payments from abroad)."""
