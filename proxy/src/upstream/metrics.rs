//! Prometheus metrics of the server-facing side, per server and instance.
//! Handles are resolved once per instance, so the request path does no
//! label look-ups.

use crate::metrics::REGISTRY;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use std::sync::LazyLock;

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = REGISTRY.register(Box::new(collector.clone())) {
        tracing::warn!("metric registration failed: {e}");
    }
    collector
}

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("mcpd_upstream_requests_total", "Requests sent to HTTP upstream instances, by result");
    register(IntCounterVec::new(opts, &["server", "instance", "result"]).expect("valid metric"))
});

static SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new("mcpd_upstream_response_seconds", "Time until an upstream instance's answer begins")
        .buckets(vec![1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]);
    register(HistogramVec::new(opts, &["server", "instance"]).expect("valid metric"))
});

static UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("mcpd_upstream_instance_up", "1 while an instance takes new sessions, 0 while ejected");
    register(IntGaugeVec::new(opts, &["server", "instance"]).expect("valid metric"))
});

static SESSIONS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("mcpd_upstream_sessions", "Client sessions held by each instance or replica");
    register(IntGaugeVec::new(opts, &["server", "instance"]).expect("valid metric"))
});

static EJECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("mcpd_upstream_ejections_total", "Instances taken out of balancing, by cause");
    register(IntCounterVec::new(opts, &["server", "instance", "cause"]).expect("valid metric"))
});

static UNROUTABLE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "mcpd_unroutable_server_messages_total",
        "Messages a shared server sent that no single client could be told (dropped, or refused if requests)",
    );
    register(IntCounterVec::new(opts, &["server", "kind"]).expect("valid metric"))
});

static REFUSED_ANSWERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "mcpd_refused_client_answers_total",
        "Client answers to a stdio server's requests that mcpd did not pass on, by reason",
    );
    register(IntCounterVec::new(opts, &["server", "reason"]).expect("valid metric"))
});

static WITHDRAWN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "mcpd_withdrawn_server_requests_total",
        "A stdio server's requests to clients that mcpd answered with an error itself, for no client would, by reason",
    );
    register(IntCounterVec::new(opts, &["server", "reason"]).expect("valid metric"))
});

/// One instance's metric handles.
pub struct InstanceMetrics {
    pub ok: IntCounter,
    pub failed: IntCounter,
    pub refused: IntCounter,
    pub seconds: prometheus::Histogram,
    pub up: IntGauge,
    pub sessions: IntGauge,
    pub ejected_connect: IntCounter,
    pub ejected_health: IntCounter,
}

impl InstanceMetrics {
    pub fn new(server: &str, instance: &str) -> InstanceMetrics {
        let labels = [server, instance];
        InstanceMetrics {
            ok: REQUESTS.with_label_values(&[server, instance, "ok"]),
            failed: REQUESTS.with_label_values(&[server, instance, "failed"]),
            refused: REQUESTS.with_label_values(&[server, instance, "http_error"]),
            seconds: SECONDS.with_label_values(&labels),
            up: UP.with_label_values(&labels),
            sessions: SESSIONS.with_label_values(&labels),
            ejected_connect: EJECTIONS.with_label_values(&[server, instance, "connection"]),
            ejected_health: EJECTIONS.with_label_values(&[server, instance, "health_check"]),
        }
    }
}

/// The sessions gauge of a stdio replica slot.
pub fn replica_sessions(server: &str, slot: usize) -> IntGauge {
    SESSIONS.with_label_values(&[server, &format!("replica-{slot}")])
}

/// Server messages kept from every client by the routing policy
/// (`kind`: `notification` or `request`).
pub fn unroutable(server: &str, kind: &str) -> IntCounter {
    UNROUTABLE.with_label_values(&[server, kind])
}

/// A client's answer to a server request that mcpd refused (`reason`:
/// `unknown` or `not_owner`).
pub fn refused_answer(server: &str, reason: &str) -> IntCounter {
    REFUSED_ANSWERS.with_label_values(&[server, reason])
}

/// A server request mcpd withdrew (`reason`: `client_gone`,
/// `session_ended` or `timeout`).
pub fn withdrawn(server: &str, reason: &str) -> IntCounter {
    WITHDRAWN.with_label_values(&[server, reason])
}
