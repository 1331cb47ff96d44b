//! [`BlockingConsumer`]: the consumer for code without an async runtime of its own, as
//! [`BlockingProducer`](crate::BlockingProducer) is for the producer.
//!
//! It owns a one-worker tokio runtime on which the [`Consumer`] and its background tasks
//! (heartbeats, fetch-ahead) run; every method blocks the calling thread on it. The consumer's
//! contract is unchanged: rebalance callbacks run only inside `poll` and `close`, on the calling
//! thread's `block_on`, and heartbeats keep going between polls up to `max_poll_interval_ms`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Consumer, ConsumerConfig, ConsumerRecord, RebalanceListener};
use crate::error::Result;
use crate::TopicPartition;

pub struct BlockingConsumer {
    runtime: tokio::runtime::Runtime,
    consumer: Option<Consumer>,
}

impl BlockingConsumer {
    pub fn new(config: ConsumerConfig) -> Result<BlockingConsumer> {
        let runtime = crate::blocking_runtime("consumer")?;
        let consumer = runtime.block_on(Consumer::new(config))?;
        Ok(BlockingConsumer { runtime, consumer: Some(consumer) })
    }

    fn consumer(&mut self) -> &mut Consumer {
        self.consumer.as_mut().expect("present until close")
    }

    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.assign(partitions))
    }

    pub fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.subscribe(topics))
    }

    pub fn subscribe_with(&mut self, topics: Vec<String>, listener: Box<dyn RebalanceListener>) -> Result<()> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.subscribe_with(topics, listener))
    }

    /// Records buffered or arriving within `timeout` (see [`Consumer::poll`]).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.poll(timeout))
    }

    pub fn commit_sync(&mut self) -> Result<()> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.commit_sync())
    }

    pub fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.commit_offsets(offsets))
    }

    pub fn committed(&mut self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, i64>> {
        let consumer = self.consumer.as_mut().expect("present until close");
        self.runtime.block_on(consumer.committed(partitions))
    }

    pub fn assignment(&mut self) -> Vec<TopicPartition> {
        self.consumer().assignment().to_vec()
    }

    pub fn position(&mut self, tp: &TopicPartition) -> Option<i64> {
        self.consumer().position(tp)
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) {
        self.consumer().seek(tp, offset)
    }

    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        self.consumer().pause(partitions)
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        self.consumer().resume(partitions)
    }

    /// Commits (with auto-commit), runs the revoke callback and leaves the group.
    pub fn close(mut self) -> Result<()> {
        let consumer = self.consumer.take().expect("present until close");
        self.runtime.block_on(consumer.close())
    }
}
