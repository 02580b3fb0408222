//! What the Goals side needs of the engine: the calls of the contract, aimed at
//! a connection, and what each connection's integration declares. The platform
//! (linking, syncing, the faces) reaches components only through this trait, so
//! it runs over one component ([`PluginRuntime`]), every integration of a host
//! ([`Integrations`]), or a fake in tests.

use crate::bindings::{
    App, Column, DeviceCode, Entity, Identity, Measurement, MetricSpec, PluginInfo, SignInStatus,
    View, ViewRef,
};
use crate::connections::ConnectionRecord;
use crate::integrations::Integrations;
use crate::outbound::TrafficReading;
use crate::runtime::{CallError, PluginRuntime};
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
    fn fetch_and_aggregate<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
    ) -> Call<'a, Measurement>;
    fn start_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, DeviceCode>;
    fn poll_device_sign_in<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, SignInStatus>;
    fn who_am_i<'a>(&'a self, conn: &'a ConnectionRecord) -> Call<'a, Identity>;
}

/// One engine implementation per type, each call forwarded to `$target`.
macro_rules! forward_calls {
    ($type:ty, |$this:ident, $conn:ident| $target:expr, |$self_:ident, $id:ident| $declared:expr) => {
        impl Engine for $type {
            fn info(&self, $conn: &ConnectionRecord) -> Result<&PluginInfo, CallError> {
                let $this = self;
                Ok($target?.info())
            }

            fn declared(&self, $id: &str) -> Option<&PluginInfo> {
                let $self_ = self;
                $declared
            }

            fn traffic(&self) -> TrafficReading {
                <$type>::traffic(self)
            }

            fn list_apps<'a>(&'a self, $conn: &'a ConnectionRecord) -> Call<'a, Vec<App>> {
                let $this = self;
                Box::pin(async move { $target?.list_apps($conn).await })
            }

            fn list_entities<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
                app: &'a str,
            ) -> Call<'a, Vec<Entity>> {
                let $this = self;
                Box::pin(async move { $target?.list_entities($conn, app).await })
            }

            fn list_views<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
                entity: &'a str,
                search: Option<&'a str>,
            ) -> Call<'a, Vec<View>> {
                let $this = self;
                Box::pin(async move { $target?.list_views($conn, entity, search).await })
            }

            fn list_columns<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
                entity: &'a str,
                view: &'a ViewRef,
            ) -> Call<'a, Vec<Column>> {
                let $this = self;
                Box::pin(async move { $target?.list_columns($conn, entity, view).await })
            }

            fn fetch_and_aggregate<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
                spec: &'a MetricSpec,
            ) -> Call<'a, Measurement> {
                let $this = self;
                Box::pin(async move { $target?.fetch_and_aggregate($conn, spec).await })
            }

            fn start_device_sign_in<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
            ) -> Call<'a, DeviceCode> {
                let $this = self;
                Box::pin(async move { $target?.start_device_sign_in($conn).await })
            }

            fn poll_device_sign_in<'a>(
                &'a self,
                $conn: &'a ConnectionRecord,
            ) -> Call<'a, SignInStatus> {
                let $this = self;
                Box::pin(async move { $target?.poll_device_sign_in($conn).await })
            }

            fn who_am_i<'a>(&'a self, $conn: &'a ConnectionRecord) -> Call<'a, Identity> {
                let $this = self;
                Box::pin(async move { $target?.who_am_i($conn).await })
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
    fn fetch_and_aggregate<'a>(
        &'a self,
        conn: &'a ConnectionRecord,
        spec: &'a MetricSpec,
    ) -> Call<'a, Measurement> {
        (**self).fetch_and_aggregate(conn, spec)
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

forward_calls!(PluginRuntime, |this, _conn| itself(this), |this, _id| Some(
    this.info()
));
forward_calls!(
    Integrations,
    |this, conn| this.for_connection(conn),
    |this, id| this.get(Some(id)).ok().map(PluginRuntime::info)
);
