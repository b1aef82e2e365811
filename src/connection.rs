//! Which Diesel and diesel-async connections the inbox works on.

/// A Diesel connection the inbox can work on.
///
/// Implemented for `diesel::SqliteConnection`, `diesel::PgConnection` and
/// `diesel::MysqlConnection` (each behind its feature) and, with the `r2d2` feature,
/// for a `diesel::r2d2::PooledConnection` of any of them, so both `&mut pooled` and
/// `&mut *pooled` work. Sealed: the inbox relies on each backend's SQL dialect.
pub trait InboxConnection: sealed::Sealed {}

/// A diesel-async connection the [`AsyncInbox`](crate::AsyncInbox) can work on.
///
/// Implemented for `diesel_async::AsyncPgConnection` (with `postgres`),
/// `diesel_async::AsyncMysqlConnection` (with `mysql`),
/// `SyncConnectionWrapper<SqliteConnection>` (with `sqlite`), and for the pooled
/// connections of diesel-async's deadpool, bb8 and mobc pools that hold one of them
/// (`deadpool::managed::Object`, `bb8::PooledConnection`, `mobc::Connection`), so both
/// `&mut pooled` and `&mut *pooled` work. Sealed, like [`InboxConnection`].
#[cfg(feature = "diesel-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
pub trait AsyncInboxConnection: sealed::AsyncSealed + Send {}

pub(crate) mod sealed {
    /// The connection that runs the operations for an
    /// [`InboxConnection`](super::InboxConnection): itself, or the one a pool lends.
    pub trait Sealed {
        /// The backend's own connection type.
        type Operations: crate::operations::Operations;
        /// That connection.
        fn operations(&mut self) -> &mut Self::Operations;
    }

    /// The connection that runs the operations for an
    /// [`AsyncInboxConnection`](super::AsyncInboxConnection): itself, or the one a pool
    /// lends.
    #[cfg(feature = "diesel-async")]
    pub trait AsyncSealed {
        /// The backend's own async connection type.
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

/// A backend's own async connection type is an [`AsyncInboxConnection`] that runs its
/// operations itself.
#[cfg(feature = "diesel-async")]
macro_rules! async_inbox_connection {
    ($conn:ty) => {
        impl $crate::connection::sealed::AsyncSealed for $conn {
            type Operations = Self;
            fn operations(&mut self) -> &mut Self {
                self
            }
        }
        impl $crate::connection::AsyncInboxConnection for $conn {}
    };
}
#[cfg(feature = "diesel-async")]
pub(crate) use async_inbox_connection;

/// A pooled connection is an inbox connection of the same flavour as the connection it
/// holds: `$pooled` is generic over `$manager`, bounded by `$bound`, holding a
/// `$held` connection.
#[cfg(any(feature = "r2d2", feature = "diesel-async"))]
macro_rules! pooled_connection {
    (
        $sealed:ident, $public:ident,
        impl<$($lt:lifetime,)? $manager:ident> $pooled:ty
        where [$($bound:tt)+], $held:ty
    ) => {
        impl<$($lt,)? $manager> sealed::$sealed for $pooled
        where
            $manager: $($bound)+,
            $held: $public,
        {
            type Operations = <$held as sealed::$sealed>::Operations;
            fn operations(&mut self) -> &mut Self::Operations {
                (**self).operations()
            }
        }

        impl<$($lt,)? $manager> $public for $pooled
        where
            $manager: $($bound)+,
            $held: $public,
        {
        }
    };
}

#[cfg(feature = "r2d2")]
pooled_connection!(
    Sealed, InboxConnection,
    impl<C> diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
    where [diesel::r2d2::R2D2Connection + 'static], C
);

#[cfg(feature = "diesel-async")]
pooled_connection!(
    AsyncSealed, AsyncInboxConnection,
    impl<M> deadpool::managed::Object<M>
    where [deadpool::managed::Manager], M::Type
);

#[cfg(feature = "diesel-async")]
pooled_connection!(
    AsyncSealed, AsyncInboxConnection,
    impl<'a, M> bb8::PooledConnection<'a, M>
    where [bb8::ManageConnection], M::Connection
);

#[cfg(feature = "diesel-async")]
pooled_connection!(
    AsyncSealed, AsyncInboxConnection,
    impl<M> mobc::Connection<M>
    where [mobc::Manager], M::Connection
);
