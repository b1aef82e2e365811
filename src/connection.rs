//! Which Diesel connections the inbox works on.

/// A Diesel connection the inbox can work on.
///
/// Implemented for [`diesel::SqliteConnection`], [`diesel::PgConnection`] and
/// [`diesel::MysqlConnection`] (each behind its feature) and, with the `r2d2` feature,
/// for a `diesel::r2d2::PooledConnection` of any of them, so both `&mut pooled` and
/// `&mut *pooled` work. Sealed: the inbox relies on each backend's SQL dialect.
pub trait InboxConnection: sealed::Sealed {}

pub(crate) mod sealed {
    /// The connection that runs the operations for an [`InboxConnection`](super::InboxConnection):
    /// itself, or the one a pool lends.
    pub trait Sealed {
        /// The backend's own connection type.
        type Operations: crate::operations::Operations;
        /// That connection.
        fn operations(&mut self) -> &mut Self::Operations;
    }
}

/// A backend's own connection type is an [`InboxConnection`] that runs its operations itself.
macro_rules! inbox_connection {
    ($conn:ty) => {
        impl $crate::connection::sealed::Sealed for $conn {
            type Operations = Self;
            fn operations(&mut self) -> &mut Self {
                self
            }
        }
        impl $crate::connection::InboxConnection for $conn {}
    };
}
pub(crate) use inbox_connection;

#[cfg(feature = "r2d2")]
impl<C> sealed::Sealed for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
where
    C: InboxConnection + diesel::r2d2::R2D2Connection + 'static,
{
    type Operations = C::Operations;
    fn operations(&mut self) -> &mut Self::Operations {
        (**self).operations()
    }
}

#[cfg(feature = "r2d2")]
impl<C> InboxConnection for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>> where
    C: InboxConnection + diesel::r2d2::R2D2Connection + 'static
{
}
