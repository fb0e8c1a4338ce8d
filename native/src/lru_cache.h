// A map bounded by entry count that evicts the least recently used entry.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>

namespace ebpf {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  // The entry for `key`, now the most recently used; nullptr if absent.
  Value* Find(const Key& key) {
    auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, found->second);
    return &found->second->second;
  }

  // Inserts or replaces; returns the entry evicted to stay within capacity, if any.
  std::optional<std::pair<Key, Value>> Insert(const Key& key, Value value) {
    if (Value* existing = Find(key)) {
      *existing = std::move(value);
      return std::nullopt;
    }
    entries_.emplace_front(key, std::move(value));
    index_.emplace(key, entries_.begin());
    if (entries_.size() <= capacity_) return std::nullopt;
    std::pair<Key, Value> evicted = std::move(entries_.back());
    index_.erase(evicted.first);
    entries_.pop_back();
    return evicted;
  }

  size_t size() const { return entries_.size(); }

  void Clear() {
    index_.clear();
    entries_.clear();
  }

 private:
  using Entries = std::list<std::pair<Key, Value>>;
  size_t capacity_;
  Entries entries_;  // most recently used first
  std::unordered_map<Key, typename Entries::iterator, Hash> index_;
};

}  // namespace ebpf
