//! What the Goals side needs of the engine: the calls of the contract, aimed at
//! a connection, and what each connection's integration declares. The platform
//! (linking, syncing, the faces) reaches components only through this trait, so
//! it runs over one component ([`PluginRuntime`]), every integration of a host
//! ([`Integrations`]), or a fake in tests. Here the application's connection
//! becomes the engine's narrow [`CallTarget`].

use crate::bindings::{
    App, Certificate, Chart, ChartSelection, Column, Connection, Credential, DateWindow,
    DeviceCode, Entity, Error, Identity, Measurement, MetricSpec, PluginInfo, SettingValue,
    SignInStatus, View, ViewRef,
};
use crate::connections::{ConnectionRecord, SignIn};
use goals_engine::outbound::TrafficReading;
use goals_engine::{CallError, CallTarget, Integrations, PluginRuntime};
use std::future::Future;
use std::pin::Pin;

/// A call in flight.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

pub trait Engine: Send + Sync {
    /// What the integration of `conn` declares.
    fn info(&self, conn: &ConnectionRecord) -> Result<&PluginInfo, CallError>;
    /// What integration `id` declares, when it is loaded.
    fn declared(&self, id: &str) -> Option<&PluginInfo>;
    /// Requests and bytes of every call so far.
    fn traffic(&self) -> TrafficReading;
    fn list_apps<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Vec<App>>;
    fn list_entities<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        app: &'a str,
    ) -> Call<'a, Vec<Entity>>;
    fn list_views<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
        search: Option<&'a str>,
    ) -> Call<'a, Vec<View>>;
    fn list_columns<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
        view: &'a ViewRef,
    ) -> Call<'a, Vec<Column>>;
    /// Measures `spec` over all of the view's rows.
    fn fetch_and_aggregate<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
    ) -> Call<'a, Measurement> {
        self.fetch_and_aggregate_within(conn, spec, &[], None)
    }
    /// Measures `spec` over the view's rows within every one of `windows`, as
    /// the measure of `chart` when given.
    fn fetch_and_aggregate_within<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
        windows: &'a [DateWindow],
        chart: Option<&'a ChartSelection>,
    ) -> Call<'a, Measurement>;
    /// Measures `spec` once per point window, as the contract's
    /// `fetch-series` does; the first measurement carries the whole cost.
    fn fetch_series<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
        windows: &'a [DateWindow],
        chart: Option<&'a ChartSelection>,
        points: &'a [DateWindow],
    ) -> Call<'a, Vec<Measurement>>;
    /// The charts of `entity` (none from an integration without charts).
    fn list_charts<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
    ) -> Call<'a, Vec<Chart>>;
    fn start_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, DeviceCode>;
    fn poll_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, SignInStatus>;
    fn who_am_i<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Identity>;
}

/// One engine implementation per type, each call forwarded to the component
/// that `$runtime` picks for the connection's integration.
macro_rules! forward_calls {
    ($type:ty, |$this:ident, $integration:ident| $runtime:expr, |$self_:ident, $id:ident| $declared:expr) => {
        impl Engine for $type {
            fn info(&self, conn: &ConnectionRecord) -> Result<&PluginInfo, CallError> {
                let ($this, $integration) = (self, conn.integration.as_str());
                Ok($runtime?.info())
            }

            fn declared(&self, $id: &str) -> Option<&PluginInfo> {
                let $self_ = self;
                $declared
            }

            fn traffic(&self) -> TrafficReading {
                <$type>::traffic(self)
            }

            fn list_apps<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Vec<App>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.list_apps(&target).await
                })
            }

            fn list_entities<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                app: &'a str,
            ) -> Call<'a, Vec<Entity>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.list_entities(&target, app).await
                })
            }

            fn list_views<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                entity: &'a str,
                search: Option<&'a str>,
            ) -> Call<'a, Vec<View>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.list_views(&target, entity, search).await
                })
            }

            fn list_columns<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                entity: &'a str,
                view: &'a ViewRef,
            ) -> Call<'a, Vec<Column>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.list_columns(&target, entity, view).await
                })
            }

            fn fetch_and_aggregate_within<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                spec: &'a MetricSpec,
                windows: &'a [DateWindow],
                chart: Option<&'a ChartSelection>,
            ) -> Call<'a, Measurement> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?
                        .fetch_and_aggregate_within(&target, spec, windows, chart)
                        .await
                })
            }

            fn fetch_series<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                spec: &'a MetricSpec,
                windows: &'a [DateWindow],
                chart: Option<&'a ChartSelection>,
                points: &'a [DateWindow],
            ) -> Call<'a, Vec<Measurement>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?
                        .fetch_series(&target, spec, windows, chart, points)
                        .await
                })
            }

            fn list_charts<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
                entity: &'a str,
            ) -> Call<'a, Vec<Chart>> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.list_charts(&target, entity).await
                })
            }

            fn start_device_sign_in<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
            ) -> Call<'a, DeviceCode> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.start_device_sign_in(&target).await
                })
            }

            fn poll_device_sign_in<'a>(
                &'a self,
                conn: &'a ConnectionRecord,
            ) -> Call<'a, SignInStatus> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.poll_device_sign_in(&target).await
                })
            }

            fn who_am_i<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Identity> {
                Box::pin(async move {
                    let target = call_target(conn)?;
                    let ($this, $integration) = (self, target.integration.as_str());
                    $runtime?.who_am_i(&target).await
                })
            }
        }
    };
}

/// A shared engine is an engine: `&Arc<E>` passes wherever `&dyn Engine` goes.
impl<E: Engine + ?Sized> Engine for std::sync::Arc<E> {
    fn info(&self, conn: &ConnectionRecord) -> Result<&PluginInfo, CallError> {
        (**self).info(conn)
    }
    fn declared(&self, id: &str) -> Option<&PluginInfo> {
        (**self).declared(id)
    }
    fn traffic(&self) -> TrafficReading {
        (**self).traffic()
    }
    fn list_apps<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Vec<App>> {
        (**self).list_apps(conn)
    }
    fn list_entities<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        app: &'a str,
    ) -> Call<'a, Vec<Entity>> {
        (**self).list_entities(conn, app)
    }
    fn list_views<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
        search: Option<&'a str>,
    ) -> Call<'a, Vec<View>> {
        (**self).list_views(conn, entity, search)
    }
    fn list_columns<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
        view: &'a ViewRef,
    ) -> Call<'a, Vec<Column>> {
        (**self).list_columns(conn, entity, view)
    }
    fn fetch_and_aggregate_within<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
        windows: &'a [DateWindow],
        chart: Option<&'a ChartSelection>,
    ) -> Call<'a, Measurement> {
        (**self).fetch_and_aggregate_within(conn, spec, windows, chart)
    }
    fn fetch_series<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
        windows: &'a [DateWindow],
        chart: Option<&'a ChartSelection>,
        points: &'a [DateWindow],
    ) -> Call<'a, Vec<Measurement>> {
        (**self).fetch_series(conn, spec, windows, chart, points)
    }
    fn list_charts<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        entity: &'a str,
    ) -> Call<'a, Vec<Chart>> {
        (**self).list_charts(conn, entity)
    }
    fn start_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, DeviceCode> {
        (**self).start_device_sign_in(conn)
    }
    fn poll_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, SignInStatus> {
        (**self).poll_device_sign_in(conn)
    }
    fn who_am_i<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Identity> {
        (**self).who_am_i(conn)
    }
}

/// One component serves every connection it is given.
fn itself(runtime: &PluginRuntime) -> Result<&PluginRuntime, CallError> {
    Ok(runtime)
}

forward_calls!(
    PluginRuntime,
    |this, _integration| itself(this),
    |this, _id| Some(this.info())
);
forward_calls!(
    Integrations,
    |this, integration| this
        .get(Some(integration))
        .map_err(|missing| CallError::NoIntegration(missing.to_string())),
    |this, id| this.get(Some(id)).ok().map(PluginRuntime::info)
);

/// The connection as the engine and the plugin see it. The secret leaves the
/// application's keeping only here, for the duration of one call.
pub fn call_target(conn: &ConnectionRecord) -> Result<CallTarget, CallError> {
    let unreadable = || CallError::Plugin {
        error: Error::Unauthorized(crate::connections::UNREADABLE_SECRET.to_string()),
    };
    let secret = || {
        conn.secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .ok_or_else(unreadable)
    };
    let credential = match conn.sign_in {
        // A person's sign-in sealed under a key this host no longer has: say so,
        // rather than let the plugin find no sign-in at all. (A secret that cannot
        // be opened is simply absent, and a new one given for a sign-in is used.)
        SignIn::DeviceCode if conn.key_lost => return Err(unreadable()),
        SignIn::DeviceCode => Credential::User,
        SignIn::ClientSecret => Credential::ClientSecret(secret()?),
        SignIn::ApiKey => Credential::ApiKey(secret()?),
        SignIn::Certificate => {
            let (certificate_pem, private_key_pem) =
                crate::connections::split_certificate(&secret()?).ok_or_else(unreadable)?;
            Credential::Certificate(Certificate {
                certificate_pem,
                private_key_pem,
            })
        }
    };
    Ok(CallTarget {
        integration: conn.integration.clone(),
        connection: Connection {
            id: conn.id.clone(),
            settings: conn
                .settings
                .iter()
                .map(|(key, value)| SettingValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            credential,
        },
        origins: conn.origins.clone(),
        allow_loopback: conn.allow_loopback,
    })
}
