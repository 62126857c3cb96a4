//! Building and running one parley process.
//!
//! [`Application::build`] does everything that can fail (open the store and
//! migrate it, load keys, bind both listeners) and reports the bound
//! addresses, so tests start the real application on port 0;
//! [`Application::run_until_stopped`] serves until a signal stops it.

use super::{AppState, routes};
use crate::auth::login_backoff::LoginBackoff;
use crate::auth::{JwtKeys, Revocations};
use crate::config::Settings;
use crate::http::health::Probes;
use crate::http::{self, middleware};
use crate::infra::bus::RedisBus;
use crate::infra::limiter::{LocalLimiter, RedisLimiter, SharedLimiter};
use crate::infra::redis::Redis;
use crate::infra::webpush::{Vapid, WebPush};
use crate::observability::lifecycle::Lifecycle;
use crate::service::{Services, revocation};
use crate::store::SharedStore;
use crate::store::cache::Cache;
use crate::store::memory::MemoryStore;
use crate::store::postgres::PgStore;
use crate::ws::WsParts;
use crate::ws::live::LiveNotifications;
use crate::ws::protocol::JsonEncoder;
use actix_http::{HttpService, KeepAlive};
use actix_service::{IntoServiceFactory, ServiceFactory};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, web};
use anyhow::Context;
use parley_actors::bus::Invalidator;
use parley_actors::dependency::CheckTiming;
use parley_actors::ports::Dependency;
use parley_actors::ports::{Bus, LocalBus, MessageLog, OpenWriterLog};
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
        let metrics = Arc::new(
            crate::observability::metrics::Metrics::new(
                &instance_id,
                crate::ws::protocol::SERVER_FRAME_TYPES,
            )
            .context("registering metrics")?,
        );
        let breakers = crate::infra::breaker::Breakers::new(
            crate::infra::breaker::Thresholds {
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
        let writer_log: OpenWriterLog = {
            let store = store.clone();
            Arc::new(move || store.writer_log().unwrap_or_else(|| store.clone()))
        };
        let engine = Engine::start(EngineParts {
            log,
            writer_log,
            encoder: Arc::new(JsonEncoder),
            bus: bus.bus.clone(),
            observer: Arc::new(crate::observability::metrics::EngineMetrics(
                metrics.clone(),
            )),
            dependencies: dependencies(&store, redis.as_ref()),
            check_timing: CheckTiming {
                interval: Duration::from_millis(settings.health.check_interval_ms),
                timeout: crate::http::health::CHECK_TIMEOUT,
            },
        });
        for dependency in engine.dependencies.iter() {
            crate::observability::metrics::follow_dependency(&metrics, dependency);
        }
        let cache = Arc::new(Cache::new(redis.clone(), bus.bus.clone(), metrics.clone()));
        let revocations = Arc::new(Revocations::new(settings.auth.access_ttl_s));
        if let Some(redis_bus) = &bus.redis {
            let cache = cache.clone();
            let invalidate: Invalidator = Arc::new(move |key: &str| cache.drop_local(key));
            let revoked = revocation::bus_sink(revocations.clone(), metrics.clone());
            let inbox = engine.inbox(Some(invalidate)).on_revoked(revoked);
            redis_bus.attach(inbox).await;
        }
        let live = Arc::new(LiveNotifications {
            notifier: engine.notifier.clone().recipient(),
            bus: bus.bus.clone(),
            metrics: metrics.clone(),
        });
        // Before the first event: what the stored endpoints subscribe to.
        store
            .refresh_webhook_filter()
            .await
            .map_err(|e| anyhow::anyhow!(e.describe()))
            .context("reading webhook endpoints")?;
        let webhooks = Arc::new(crate::webhooks::Webhooks::new(store.clone()));
        let services = Services {
            webhooks,
            store,
            cache,
            engine,
            bus: bus.bus,
            metrics: metrics.clone(),
            settings: settings.clone(),
            instance_id,
            live,
            revocations,
        };
        revocation::start_poller(services.clone()).await;
        let lifecycle = Arc::new(Lifecycle::default());
        let ws = Arc::new(WsParts {
            open: Arc::new(crate::ws::sockets::OpenSockets::new(
                metrics.ws_sockets.clone(),
            )),
            tickets: Arc::new(crate::ws::ticket::Tickets::new(redis.clone())),
            conn_caps: crate::ws::caps::ConnCaps::new(
                settings.ws.conns_per_user.get(),
                settings.ws.conns_per_ip.get(),
                redis.clone(),
                metrics,
            ),
            publish_quota: Arc::new(crate::ws::quota::PublishQuota::new(
                settings.rate.ws_user_msgs_per_s,
                redis.clone(),
            )),
        });
        let push = start_push(&services, &ws, &lifecycle)?;
        let state = AppState {
            services,
            keys,
            limiter,
            login_backoff: Arc::new(LoginBackoff::new(redis.clone())),
            breakers,
            probes: Arc::new(Probes { lifecycle, redis }),
            ws,
            push,
            drained: Arc::default(),
        };
        let public_listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("PARLEY_HTTP_ADDR: binding {}", settings.http.addr))?;
        let admin_listener = TcpListener::bind(settings.http.admin_addr)
            .with_context(|| format!("PARLEY_ADMIN_ADDR: binding {}", settings.http.admin_addr))?;
        let public_addr = public_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let public = serve(public_listener, &state, routes::public, true)?;
        let admin = serve(admin_listener, &state, routes::admin, false)?;
        crate::service::retention::spawn_purger(&state.services, state.probes.lifecycle.clone());
        crate::webhooks::worker::Worker {
            webhooks: state.services.webhooks.clone(),
            settings: settings.webhooks.clone(),
            metrics: state.services.metrics.clone(),
            lifecycle: state.probes.lifecycle.clone(),
        }
        .spawn()
        .context("starting the webhook worker")?;
        state.lifecycle().mark_started();
        let services = &state.services;
        tracing::info!(%public_addr, %admin_addr, instance = %services.instance_id, store = services.store.backend(), "parley is up");
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
    /// [`crate::app::drain`]), stops the listeners (in-flight requests complete)
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
            crate::app::drain::drain(&state).await;
            // The sessions are gone; their sockets may still be writing
            // the last frames and waiting for the clients' close frames.
            let deadline = tokio::time::Instant::now() + crate::ws::linger::DEADLINE;
            let left = state.ws.open.closed(deadline).await;
            if left > 0 {
                tracing::warn!(left, "WebSockets still open at shutdown");
            }
            for handle in &handles {
                handle.stop(true).await;
            }
        });
        let (public, admin) = tokio::join!(self.public, self.admin);
        public.context("public listener")?;
        admin.context("admin listener")?;
        // Connections close last: the drain and the listeners are done.
        self.state.services.engine.close_dependencies().await;
        tracing::info!("parley stopped");
        crate::observability::telemetry::shutdown();
        Ok(())
    }
}

/// The VAPID key, the push client and this instance's push sender, which
/// asks the WebSocket caps who is connected.
fn start_push(
    services: &Services,
    ws: &WsParts,
    lifecycle: &Arc<Lifecycle>,
) -> anyhow::Result<Arc<WebPush>> {
    let settings = &services.settings.push;
    let vapid = Arc::new(Vapid::load(settings).context("loading the VAPID key")?);
    let timeout = crate::service::push::send_timeout(settings);
    let web_push = Arc::new(WebPush::new(vapid, settings.ttl_s, timeout)?);
    let sender = crate::service::push::Sender {
        store: services.store.clone(),
        slots: crate::service::push::send_slots(),
        web_push: web_push.clone(),
        presence: ws.conn_caps.clone(),
        finisher: crate::service::push::Finisher::spawn(
            services.store.clone(),
            services.metrics.clone(),
        ),
        metrics: services.metrics.clone(),
        settings: settings.clone(),
    };
    crate::service::push::spawn_sender(sender, lifecycle.clone());
    Ok(web_push)
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
    metrics: &crate::observability::metrics::Metrics,
    breakers: &crate::infra::breaker::Breakers,
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

/// One listener's HTTP server. The public one hands WebSocket upgrades
/// their connection (see [`crate::ws::handoff`]); both serve HTTP/1.1 with
/// the settings `HttpServer` would apply, which it cannot do with an
/// upgrade service.
fn serve(
    listener: TcpListener,
    state: &AppState,
    routes: fn(&mut web::ServiceConfig),
    public: bool,
) -> anyhow::Result<Server> {
    let settings = state.services.settings.clone();
    let send_buffer_bytes = public.then_some(settings.http.send_buffer_bytes);
    let addr = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let state = state.clone();
    let make_app = move || {
        let app = app(state.clone(), routes, public).into_factory();
        actix_service::map_config(app, |_| AppConfig::default())
    };
    let mut builder = builder
        .listen(format!("parley-{addr}"), listener, move || {
            let shutdown = shutdown.clone();
            let service = HttpService::build()
                .keep_alive(KeepAlive::Timeout(Duration::from_secs(30)))
                .client_disconnect_timeout(Duration::from_secs(1))
                // Every frame goes out when written: with Nagle's algorithm
                // (actix's default keeps the OS's), a frame written while the
                // one before is unacknowledged waits for that ACK, which a
                // reading client may delay.
                .tcp_nodelay(true)
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .on_connect_ext(send_buffer(send_buffer_bytes));
            service
                .upgrade(crate::ws::handoff::factory(make_app()))
                .finish(make_app())
                .tcp()
        })?
        // The drain already waited for the work that matters; this bounds the
        // requests still in flight when the listeners stop.
        .shutdown_timeout(10)
        .disable_signals();
    if settings.http.workers > 0 {
        builder = builder.workers(settings.http.workers);
    }
    Ok(builder.run())
}

/// The application of one listener: its routes behind parley's middleware.
fn app(
    state: AppState,
    routes: fn(&mut web::ServiceConfig),
    public: bool,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let settings = state.services.settings.clone();
    let (json, path, query) = http::extractor_config(settings.http.max_body_bytes);
    App::new()
        .configure(|app| state.register(app))
        .app_data(json)
        .app_data(path)
        .app_data(query)
        .configure(routes)
        .default_service(web::to(http::not_found))
        .wrap(Condition::new(
            public,
            from_fn(middleware::drain_gate::refuse_while_draining),
        ))
        .wrap(middleware::security::cors(&settings))
        .wrap(from_fn(middleware::problem::middleware))
        .wrap(middleware::security::security_headers())
        .wrap(from_fn(middleware::security::strict_transport_security))
        .wrap(from_fn(middleware::metrics::middleware))
        .wrap(TracingLogger::<middleware::request_span::RequestSpan>::new())
        .wrap(from_fn(middleware::request_id::middleware))
}

/// Sets `PARLEY_HTTP_SEND_BUFFER_BYTES` on each new connection: what a slow
/// reader has in flight is what its 1013 close frame waits behind (see
/// `ws::linger`). A failure leaves the kernel's default, which only costs
/// that close frame.
fn send_buffer(
    bytes: Option<usize>,
) -> impl Fn(&actix_web::rt::net::TcpStream, &mut actix_web::dev::Extensions) + 'static {
    move |tcp, _| {
        let Some(bytes) = bytes.filter(|b| *b > 0) else {
            return;
        };
        if let Err(error) = socket2::SockRef::from(tcp).set_send_buffer_size(bytes) {
            tracing::debug!(%error, "could not set the socket send buffer");
        }
    }
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
    metrics: &Arc<crate::observability::metrics::Metrics>,
    breakers: &crate::infra::breaker::Breakers,
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
    let resync = std::time::Duration::from_secs(settings.redis.resync_s);
    let redis_bus = RedisBus::start(
        redis.clone(),
        instance_id,
        metrics.clone(),
        resync,
        settings.redis.cluster_pubsub,
    );
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
