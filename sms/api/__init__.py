"""The REST API of the sms app, one module per resource; portal.urls routes them."""
