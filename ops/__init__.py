"""Operations: configuration for Prometheus, Grafana and nginx, and small scripts."""
