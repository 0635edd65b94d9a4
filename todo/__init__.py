"""A multi-user todo REST API: FastAPI over SQLModel and PostgreSQL, served on AWS Lambda."""
