"""What every view uses: headers, ui helpers, request parameters, the client IP, incidents, the
REST toolkit and the OpenAPI document."""
