//! The application's own identifiers: feed posts and notifications, which
//! the actor engine never sees (its ids are in `parley_actors::ids`).

use parley_actors::uuid_id;

uuid_id!(
    /// A feed post.
    PostId
);
uuid_id!(
    /// A stored notification.
    NotificationId
);
uuid_id!(
    /// A user's report of a message or a user.
    ReportId
);
uuid_id!(
    /// A browser's Web Push subscription.
    PushSubscriptionId
);
