"""One router per resource; handlers only translate HTTP to service calls."""
