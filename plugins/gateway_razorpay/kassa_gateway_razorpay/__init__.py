"""Razorpay payment gateway for Kassa (INR payments from India through hosted Payment Links)."""
