"""Console pages, the REST API and agent endpoints: parse, call a service, render."""
