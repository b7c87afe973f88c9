"""The service's Prometheus metrics (`ServiceMetrics`)."""

# ---------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------


class ServiceMetrics:
    """Prometheus metrics of one app, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("rag_index_requests", "HTTP requests answered, by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("rag_index_errors", "HTTP requests answered with a status >= 400",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("rag_index_request_duration_seconds", "Time from request to response, seconds",
                                 ["endpoint"], registry=r,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                          5, 10))
        self.search_seconds = Histogram("rag_index_search_seconds", "FAISS search time per request, seconds",
                                        registry=r, buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.batch = Histogram("rag_index_search_batch_size", "Query vectors per search request", registry=r,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
        self.in_flight = Gauge("rag_index_requests_in_flight", "/v1 requests being answered now", registry=r)
        self.ready = Gauge("rag_index_ready", "1 once the index is loaded", registry=r)
        self.size = Gauge("rag_index_size", "Vectors in the loaded index", registry=r)
        self.load_seconds = Gauge("rag_index_load_seconds", "Time to fetch, verify and load the index", registry=r)
        # the answer pipeline (serve --pipeline): present, and zero, without one
        self.pipeline_ready = Gauge("rag_pipeline_ready", "1 once the bundle's models are loaded", registry=r)
        self.pipeline_load_seconds = Gauge("rag_pipeline_load_seconds", "Time to fetch and load the bundle's models",
                                           registry=r)
        self.answers_queued = Gauge("rag_answers_queued", "/v1/answer requests waiting for or in generation",
                                    registry=r)
        self.answer_seconds = Histogram("rag_answer_seconds", "Retrieval and generation time per answer, seconds",
                                        registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

