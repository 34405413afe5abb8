"""Small shared helpers with no project dependencies: logging setup, allocator tuning."""
