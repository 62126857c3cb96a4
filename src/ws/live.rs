//! Live delivery to a user's sessions (`service::notify::LiveDelivery`):
//! stored notifications become `notification` frames, read cursors `read`
//! frames, pushed to the user's sessions here through the notifier and to
//! their sessions elsewhere through the bus.

use super::protocol::ServerFrame;
use crate::domain::{RoomId, Seq, UserId};
use crate::observability::metrics::Metrics;
use crate::service::notify::LiveDelivery;
use crate::store::Notification;
use actix::Recipient;
use parley_actors::notify::messages::{Push, PushMany};
use parley_actors::ports::{Bus, BusEvent};
use std::sync::Arc;

/// Pushes notification frames to live sessions on every instance.
pub struct LiveNotifications {
    /// The local notifier (one mailbox message for a whole batch).
    pub notifier: Recipient<PushMany>,
    pub bus: Arc<dyn Bus>,
    pub metrics: Arc<Metrics>,
}

impl LiveDelivery for LiveNotifications {
    fn deliver(&self, stored: &[Notification]) {
        let mut pushes = Vec::with_capacity(stored.len());
        for notification in stored {
            let frame = ServerFrame::Notification {
                id: notification.id.0,
                kind: &notification.kind,
                payload: &notification.payload,
                ts: notification.created_at,
            }
            .encode();
            self.bus.publish(BusEvent::Notification {
                user: notification.user,
                frame: frame.to_string(),
            });
            self.metrics
                .notifications
                .with_label_values(&[&notification.kind])
                .inc();
            pushes.push(Push {
                user: notification.user,
                frame,
            });
        }
        if !pushes.is_empty() {
            self.notifier.do_send(PushMany { pushes });
        }
    }

    fn read_cursor(&self, user: UserId, room: RoomId, seq: Seq) {
        let frame = ServerFrame::Read { room, seq }.encode();
        self.bus.publish(BusEvent::Notification {
            user,
            frame: frame.to_string(),
        });
        self.notifier.do_send(PushMany {
            pushes: vec![Push { user, frame }],
        });
    }
}
