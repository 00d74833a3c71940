//! Generated from `proto/handoff/v1/store.proto`: the durable records.
//! Only [`super::codec`] and the store use these; the engine never does.

tonic::include_proto!("handoff.store.v1");
