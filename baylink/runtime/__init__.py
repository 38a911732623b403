"""The embedded runtime: a Kafka-protocol broker, supervised worker and API processes."""
