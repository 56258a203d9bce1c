#define USE_C10D_GLOO 1  // ProcessGroupGloo.hpp declares the class only under this macro

#include "lib/dist/data_parallel.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#ifndef MPQ_NO_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mpq::dist {
namespace {

constexpr int64_t kBucketBytes = 25 << 20;  // DDP's default bucket_cap_mb

absl::Status Integer(const char* name, const char* text, int64_t lo, int64_t hi, int* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("data-parallel: ", name, "='", text, "' is not an integer in [", lo, ", ", hi, "]"));
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

template <typename F>
absl::Status Guard(const char* what, F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return absl::UnavailableError(absl::StrCat("data-parallel: ", what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("data-parallel: ", what, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DistEnv> DistEnvFrom(const std::function<const char*(const char*)>& get) {
  DistEnv env;
  const char* rank = get("RANK");
  const char* world = get("WORLD_SIZE");
  if (rank != nullptr || world != nullptr) {
    if (rank == nullptr || world == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("data-parallel: ", rank ? "RANK" : "WORLD_SIZE", " is set but ",
                                                     rank ? "WORLD_SIZE" : "RANK", " is not; set both"));
    }
    env.source = "torch";
  } else {
    rank = get("SLURM_PROCID");
    world = get("SLURM_NTASKS");
    if (rank == nullptr || world == nullptr) return env;  // one process
    env.source = "slurm";
  }
  const char* rank_name = env.source == "torch" ? "RANK" : "SLURM_PROCID";
  const char* world_name = env.source == "torch" ? "WORLD_SIZE" : "SLURM_NTASKS";
  if (absl::Status s = Integer(world_name, world, 1, 1 << 20, &env.world_size); !s.ok()) return s;
  if (absl::Status s = Integer(rank_name, rank, 0, env.world_size - 1, &env.rank); !s.ok()) return s;
  if (const char* addr = get("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  } else if (const char* launch = get("SLURM_LAUNCH_NODE_IPADDR"); env.source == "slurm" && launch && *launch) {
    env.master_addr = launch;
  } else if (env.world_size > 1) {
    return absl::InvalidArgumentError(absl::StrCat("data-parallel: ", world_name, "=", env.world_size,
                                                   " but MASTER_ADDR is not set (the host of rank 0)"));
  }
  if (const char* port = get("MASTER_PORT"); port != nullptr) {
    if (absl::Status s = Integer("MASTER_PORT", port, 1, 65535, &env.master_port); !s.ok()) return s;
  }
  return env;
}

absl::StatusOr<DistEnv> DistEnvFromEnvironment() {
  return DistEnvFrom([](const char* name) { return std::getenv(name); });
}

#ifdef MPQ_NO_GLOO
// A build against a LibTorch that ships no Gloo headers (a pip PyTorch: tools/gpu/build.sh
// defines MPQ_NO_GLOO then): one process only; joining a group says why it cannot.
struct DataParallel::Impl {};
DataParallel::DataParallel(int rank, int world_size, std::unique_ptr<Impl> impl) :
    rank_(rank), world_size_(world_size), impl_(std::move(impl)) {}
DataParallel::~DataParallel() = default;
absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Connect(const DistEnv& env, std::chrono::milliseconds) {
  return absl::UnimplementedError(absl::StrCat("data-parallel: rank ", env.rank, " of ", env.world_size,
                                               ": this build has no Gloo (built without its headers, "
                                               "tools/gpu/build.sh); run one process"));
}
absl::Status DataParallel::Broadcast(const std::vector<at::Tensor>&) { return absl::UnimplementedError("no Gloo"); }
absl::StatusOr<int64_t> DataParallel::AverageGradients(const std::vector<at::Tensor>&, int64_t) {
  return absl::UnimplementedError("no Gloo");
}
absl::StatusOr<std::vector<double>> DataParallel::SumOverRanks(const std::vector<double>&) {
  return absl::UnimplementedError("no Gloo");
}
absl::StatusOr<std::string> DataParallel::ShareFromRankZero(const std::string&, const std::string&) {
  return absl::UnimplementedError("no Gloo");
}
absl::Status DataParallel::Barrier() { return absl::UnimplementedError("no Gloo"); }
#else
struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

DataParallel::DataParallel(int rank, int world_size, std::unique_ptr<Impl> impl) :
    rank_(rank), world_size_(world_size), impl_(std::move(impl)) {}
DataParallel::~DataParallel() = default;

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Connect(const DistEnv& env,
                                                                    std::chrono::milliseconds timeout) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("data-parallel: rank ", env.rank, " of world size ", env.world_size, " is out of range"));
  }
  auto impl = std::make_unique<Impl>();
  absl::Status s = Guard("rendezvous", [&] {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
  });
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " (rank ", env.rank, " of ", env.world_size, ", master ",
                                               env.master_addr, ":", env.master_port, ")"));
  }
  return std::unique_ptr<DataParallel>(new DataParallel(env.rank, env.world_size, std::move(impl)));
}

absl::Status DataParallel::Broadcast(const std::vector<at::Tensor>& tensors) {
  return Guard("broadcast", [&] {
    at::NoGradGuard no_grad;
    for (const at::Tensor& t : tensors) {
      if (!t.defined() || t.numel() == 0) continue;
      std::vector<at::Tensor> one = {t.is_contiguous() ? t.detach() : t.detach().contiguous()};
      c10d::BroadcastOptions o;
      o.rootRank = 0;
      impl_->group->broadcast(one, o)->wait();
      if (!t.is_contiguous()) t.detach().copy_(one[0]);
    }
  });
}

absl::StatusOr<int64_t> DataParallel::AverageGradients(const std::vector<at::Tensor>& parameters,
                                                       int64_t local_count) {
  // Buckets of consecutive parameters; the first also carries the count and, per
  // parameter, whether this rank has its gradient.
  std::vector<std::vector<size_t>> buckets(1);
  int64_t bytes = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const int64_t b = parameters[i].numel() * static_cast<int64_t>(sizeof(float));
    if (bytes > 0 && bytes + b > kBucketBytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += b;
  }
  int64_t global = 0;
  absl::Status s = Guard("all-reduce of the gradients", [&] {
    at::NoGradGuard no_grad;
    const double weight = static_cast<double>(local_count);
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (size_t k = 0; k < buckets.size(); ++k) {
      std::vector<at::Tensor> parts;
      if (k == 0) {
        at::Tensor meta = at::zeros({static_cast<int64_t>(parameters.size()) + 1}, at::kDouble);
        double* m = meta.data_ptr<double>();
        m[0] = weight;
        for (size_t i = 0; i < parameters.size(); ++i) m[i + 1] = parameters[i].grad().defined() ? 1.0 : 0.0;
        parts.push_back(meta);
      }
      for (size_t i : buckets[k]) {
        const at::Tensor& p = parameters[i];
        const at::Tensor g = p.grad().defined() ? p.grad().reshape({-1}).to(at::kDouble) * weight
                                                : at::zeros({p.numel()}, at::kDouble);
        parts.push_back(g);
      }
      flats.push_back(at::cat(parts));
      std::vector<at::Tensor> one = {flats.back()};
      works.push_back(impl_->group->allreduce(one));
      // allreduce keeps a reference to `one`'s storage: flats.back() is that storage.
    }
    for (auto& w : works) w->wait();
    const double* meta = flats[0].data_ptr<double>();  // [count, has-gradient per parameter]
    global = static_cast<int64_t>(std::llround(meta[0]));
    if (global == 0) return;
    for (size_t k = 0; k < buckets.size(); ++k) {
      int64_t offset = k == 0 ? static_cast<int64_t>(parameters.size()) + 1 : 0;
      for (size_t i : buckets[k]) {
        const at::Tensor& p = parameters[i];
        const int64_t n = p.numel();
        if (meta[i + 1] == 0) {
          offset += n;
          continue;  // no rank has this gradient: it stays undefined, as in one process
        }
        const at::Tensor averaged = (flats[k].narrow(0, offset, n) / static_cast<double>(global)).to(p.scalar_type());
        at::Tensor param = p;  // grad() on a non-const handle
        if (param.grad().defined()) {
          param.mutable_grad().copy_(averaged.view(p.sizes()));
        } else {
          param.mutable_grad() = averaged.view(p.sizes()).clone();
        }
        offset += n;
      }
    }
  });
  if (!s.ok()) return s;
  return global;
}

absl::StatusOr<std::vector<double>> DataParallel::SumOverRanks(const std::vector<double>& values) {
  std::vector<double> out = values;
  if (values.empty()) return out;
  absl::Status s = Guard("all-reduce", [&] {
    at::Tensor t = at::tensor(values, at::kDouble);
    std::vector<at::Tensor> one = {t};
    impl_->group->allreduce(one)->wait();
    for (size_t i = 0; i < out.size(); ++i) out[i] = t[static_cast<int64_t>(i)].item<double>();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> DataParallel::ShareFromRankZero(const std::string& key, const std::string& value) {
  std::string out = value;
  const std::string what = "sharing " + key;
  absl::Status s = Guard(what.c_str(), [&] {
    const std::string k = "mpq/" + key;
    // Rank 0 hosts the store: it returns only once every rank has read the value (each
    // acknowledges under its own key), so it may exit right after.
    if (rank_ == 0) {
      impl_->store->set(k, std::vector<uint8_t>(value.begin(), value.end()));
      std::vector<std::string> acks;
      for (int r = 1; r < world_size_; ++r) acks.push_back(absl::StrCat(k, "/read/", r));
      if (!acks.empty()) impl_->store->wait(acks);
    } else {
      const std::vector<uint8_t> v = impl_->store->get(k);
      out.assign(v.begin(), v.end());
      impl_->store->set(absl::StrCat(k, "/read/", rank_), std::vector<uint8_t>{1});
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status DataParallel::Barrier() {
  return Guard("barrier", [&] { impl_->group->barrier()->wait(); });
}

#endif  // MPQ_NO_GLOO

}  // namespace mpq::dist
