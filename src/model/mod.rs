//! The domain nouns: device ids, alert codes, regions, device types, generations, time, events.

mod attrs;
pub mod clock;
mod code;
mod config_error;
pub(crate) mod device_id;
mod event;
pub mod firmware;
mod interner;
mod keyword;
mod reject;
mod rejects;
pub mod time;

pub use attrs::{DeviceType, Generation, Region};
pub use clock::{Clock, Hour};
pub use code::AlertCode;
pub use config_error::ConfigError;
pub use device_id::DeviceId;
pub use event::{Event, MessageKind, RecordAttrs, hash_bytes};
pub use interner::Interner;
pub use keyword::Keyword;
pub use reject::Reject;
pub use rejects::Rejects;
pub use time::{Day, Millis};
