"""Every write and side effect of the sms app, one module per subject."""
