//! Building and running one parley process.
//!
//! [`Application::build`] does everything that can fail (open the store and
//! migrate it, load keys, bind both listeners) and reports the bound
//! addresses, so tests start the real application on port 0;
//! [`Application::run_until_stopped`] serves until a signal stops it.

use crate::auth::JwtKeys;
use crate::bus::RedisBus;
use crate::cache::Cache;
use crate::config::Settings;
use crate::http::state::Lifecycle;
use crate::http::{self, AppState};
use crate::rate_limit::{LocalLimiter, RedisLimiter, SharedLimiter};
use crate::redis::Redis;
use crate::store::SharedStore;
use crate::store::memory::MemoryStore;
use crate::store::postgres::PgStore;
use crate::ws::protocol::JsonEncoder;
use actix_web::dev::Server;
use actix_web::middleware::{Condition, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use parley_actors::bus::Invalidator;
use parley_actors::dependency::CheckTiming;
use parley_actors::ports::Dependency;
use parley_actors::ports::{Bus, LocalBus, MessageLog};
use parley_actors::supervisor::{Engine, EngineParts};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// A built, not yet running, parley.
pub struct Application {
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    public: Server,
    admin: Server,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let instance_id: Arc<str> = settings
            .instance_id
            .clone()
            .unwrap_or_else(default_instance_id)
            .into();
        let metrics =
            Arc::new(crate::metrics::Metrics::new(&instance_id).context("registering metrics")?);
        let breakers = crate::breaker::Breakers::new(
            crate::breaker::Thresholds {
                failures: settings.breaker.failures,
                window: Duration::from_secs(settings.breaker.window_s),
                recovery: Duration::from_secs(settings.breaker.recovery_s),
            },
            Some((metrics.breaker_state.clone(), metrics.breaker_trips.clone())),
        );
        let store = open_store(&settings, &metrics, &breakers).await?;
        let keys = Arc::new(JwtKeys::load(&settings.auth).context("loading JWT keys")?);
        let log: Arc<dyn MessageLog> = store.clone();
        let (redis, bus, limiter) =
            connect_redis(&settings, &instance_id, &metrics, &breakers).await?;
        let engine = Engine::start(EngineParts {
            log,
            encoder: Arc::new(JsonEncoder),
            bus: bus.bus.clone(),
            observer: Arc::new(crate::metrics::EngineMetrics(metrics.clone())),
            dependencies: dependencies(&store, redis.as_ref()),
            check_timing: CheckTiming {
                interval: Duration::from_millis(settings.health.check_interval_ms),
                timeout: crate::http::health::CHECK_TIMEOUT,
            },
        });
        for dependency in engine.dependencies.iter() {
            crate::metrics::follow_dependency(&metrics, dependency);
        }
        let cache = Arc::new(Cache::new(redis.clone(), bus.bus.clone(), metrics.clone()));
        if let Some(redis_bus) = &bus.redis {
            let cache = cache.clone();
            let invalidate: Invalidator = Arc::new(move |key: &str| cache.drop_local(key));
            redis_bus.attach(engine.inbox(Some(invalidate))).await;
        }
        let tickets = Arc::new(crate::ws::ticket::Tickets::new(redis.clone()));
        let conn_caps = crate::ws::caps::ConnCaps::new(
            settings.ws.conns_per_user.get(),
            settings.ws.conns_per_ip.get(),
            redis.clone(),
            metrics.clone(),
        );
        let publish_quota = Arc::new(crate::ws::quota::PublishQuota::new(
            settings.rate.ws_user_msgs_per_s,
            redis.clone(),
        ));
        let state = AppState {
            store,
            keys,
            limiter,
            login_backoff: Arc::new(crate::login_backoff::LoginBackoff::new(redis.clone())),
            settings: settings.clone(),
            instance_id,
            lifecycle: Arc::new(Lifecycle::default()),
            engine,
            metrics,
            breakers,
            redis,
            bus: bus.bus,
            cache,
            tickets,
            conn_caps,
            publish_quota,
        };
        let public_listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("PARLEY_HTTP_ADDR: binding {}", settings.http.addr))?;
        let admin_listener = TcpListener::bind(settings.http.admin_addr)
            .with_context(|| format!("PARLEY_ADMIN_ADDR: binding {}", settings.http.admin_addr))?;
        let public_addr = public_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let public = serve(public_listener, &state, http::configure_public, true)?;
        let admin = serve(admin_listener, &state, http::configure_admin, false)?;
        state.lifecycle.mark_started();
        tracing::info!(%public_addr, %admin_addr, instance = %state.instance_id, store = state.store.backend(), "parley is up");
        Ok(Self {
            public_addr,
            admin_addr,
            public,
            admin,
            state,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves both listeners until `SIGTERM` or `SIGINT`: then drains (see
    /// [`crate::drain`]), stops the listeners (in-flight requests complete)
    /// and returns. A second signal exits at once.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handles = [self.public.handle(), self.admin.handle()];
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; draining (a second signal exits at once)");
            actix_web::rt::spawn(async {
                wait_for_signal().await;
                tracing::warn!("second shutdown signal: exiting now");
                std::process::exit(1);
            });
            crate::drain::drain(&state).await;
            for handle in &handles {
                handle.stop(true).await;
            }
        });
        let (public, admin) = tokio::join!(self.public, self.admin);
        public.context("public listener")?;
        admin.context("admin listener")?;
        // Connections close last: the drain and the listeners are done.
        self.state.engine.close_dependencies().await;
        tracing::info!("parley stopped");
        crate::telemetry::shutdown();
        Ok(())
    }
}

/// Resolves on `SIGTERM` or `SIGINT`.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for shutdown signals");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn open_store(
    settings: &Settings,
    metrics: &crate::metrics::Metrics,
    breakers: &crate::breaker::Breakers,
) -> anyhow::Result<SharedStore> {
    match &settings.database.url {
        Some(_) => {
            let store = PgStore::connect(&settings.database)
                .await
                .context("connecting to PostgreSQL")?
                .with_guard(crate::store::postgres::Guard {
                    breaker: breakers.get_or_register("postgres"),
                    durations: Some(metrics.db_query_duration.clone()),
                });
            Ok(Arc::new(store))
        }
        None => {
            tracing::warn!(
                "DATABASE_URL is unset: using the embedded in-process store; NOTHING SURVIVES A RESTART"
            );
            Ok(Arc::new(MemoryStore::new()))
        }
    }
}

fn serve(
    listener: TcpListener,
    state: &AppState,
    routes: fn(&mut web::ServiceConfig),
    public: bool,
) -> anyhow::Result<Server> {
    let data = web::Data::new(state.clone());
    let (json, path, query) = http::extractor_config(state.settings.http.max_body_bytes);
    let settings_for_cors = state.settings.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(json.clone())
            .app_data(path.clone())
            .app_data(query.clone())
            .configure(routes)
            .default_service(web::to(http::not_found))
            .wrap(Condition::new(
                public,
                from_fn(crate::drain::refuse_while_draining),
            ))
            .wrap(cors(&settings_for_cors))
            .wrap(from_fn(http::problem::middleware))
            .wrap(security_headers())
            .wrap(from_fn(strict_transport_security))
            .wrap(from_fn(crate::metrics::middleware))
            .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            .wrap(from_fn(http::request_id::middleware))
    })
    .on_connect(send_buffer(
        public.then_some(state.settings.http.send_buffer_bytes),
    ))
    .listen(listener)?
    // The drain already waited for the work that matters; this bounds the
    // requests still in flight when the listeners stop.
    .shutdown_timeout(10)
    .disable_signals();
    if state.settings.http.workers > 0 {
        server = server.workers(state.settings.http.workers);
    }
    // Keep-alive shorter than typical load balancer idle timeouts.
    Ok(server.keep_alive(Duration::from_secs(30)).run())
}

/// Sets `PARLEY_HTTP_SEND_BUFFER_BYTES` on each new connection: what a slow
/// reader has in flight is what its 1013 close frame waits behind (see
/// `ws::linger`). A failure leaves the kernel's default, which only costs
/// that close frame.
fn send_buffer(
    bytes: Option<usize>,
) -> impl Fn(&dyn std::any::Any, &mut actix_web::dev::Extensions) + Send + Sync + 'static {
    move |connection, _| {
        let Some(bytes) = bytes.filter(|b| *b > 0) else {
            return;
        };
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Err(error) = socket2::SockRef::from(tcp).set_send_buffer_size(bytes)
        {
            tracing::debug!(%error, "could not set the socket send buffer");
        }
    }
}

/// CORS for the origins in `PARLEY_CORS_ORIGINS` only; none by default.
fn cors(settings: &Settings) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "content-type", "x-request-id"])
        .expose_headers([
            "x-request-id",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "retry-after",
        ])
        .max_age(600);
    for origin in &settings.http.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// `Strict-Transport-Security` when the request came over TLS. parley
/// speaks plain HTTP behind a TLS-terminating proxy, so only a trusted
/// proxy's `X-Forwarded-Proto: https` says so (anyone else could send it);
/// on plain HTTP the header would be meaningless, and browsers ignore it.
async fn strict_transport_security(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let trusted = req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        req.peer_addr().is_some_and(|peer| {
            crate::http::client_ip::is_trusted(&state.settings.http.trusted_proxies, peer.ip())
        })
    });
    // The first value is the proxy nearest the client.
    let over_tls = trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let mut res = next.call(req).await?;
    if over_tls {
        res.headers_mut().insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            actix_web::http::header::HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ),
        );
    }
    Ok(res)
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
        ))
}

/// The services the engine's dependency actors watch, in the order they
/// close: Redis (`cache`) first, then PostgreSQL (`database`). The embedded
/// store has nothing to watch.
fn dependencies(
    store: &SharedStore,
    redis: Option<&Arc<Redis>>,
) -> Vec<(&'static str, Arc<dyn Dependency>)> {
    let mut dependencies: Vec<(&'static str, Arc<dyn Dependency>)> = Vec::new();
    if let Some(redis) = redis {
        dependencies.push(("cache", redis.clone()));
    }
    if store.backend() == "postgres" {
        let database = crate::store::DatabaseDependency(store.clone());
        dependencies.push(("database", Arc::new(database)));
    }
    dependencies
}

/// The bus as the engine sees it, and as the start-up needs it.
struct Buses {
    bus: Arc<dyn Bus>,
    redis: Option<Arc<RedisBus>>,
}

/// With `REDIS_URL`: the Redis connections, the bus over them and shared
/// rate limits. Without: single-instance mode.
async fn connect_redis(
    settings: &Settings,
    instance_id: &str,
    metrics: &Arc<crate::metrics::Metrics>,
    breakers: &crate::breaker::Breakers,
) -> anyhow::Result<(Option<Arc<Redis>>, Buses, SharedLimiter)> {
    let (api, auth) = (settings.rate.api_per_min, settings.rate.auth_per_min);
    let Some(url) = &settings.redis.url else {
        tracing::info!(
            "REDIS_URL is not set: single-instance mode (local fan-out and rate limits)"
        );
        let buses = Buses {
            bus: Arc::new(LocalBus),
            redis: None,
        };
        return Ok((None, buses, Arc::new(LocalLimiter::new(api, auth))));
    };
    let redis = Redis::connect(url, &settings.redis, breakers.get_or_register("redis")).await?;
    let redis_bus = RedisBus::start(redis.clone(), instance_id, metrics.clone());
    let limiter = Arc::new(RedisLimiter::new(redis.clone(), api, auth, metrics.clone()));
    let buses = Buses {
        bus: redis_bus.clone(),
        redis: Some(redis_bus),
    };
    Ok((Some(redis), buses, limiter))
}

/// The host name plus a random suffix, so two processes on one host differ.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "parley".into());
    let suffix: u32 = rand::random();
    format!("{host}-{:06x}", suffix & 0xff_ffff)
}
