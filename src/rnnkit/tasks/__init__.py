"""Tasks: one module per application (``forecast`` so far). Each turns settings and data into a
trained, evaluated, saved run directory and loads it back; the CLI is a shell over them."""
