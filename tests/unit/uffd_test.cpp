// The userfaultfd memory backend: guest memory registered with a userfaultfd and handed over a
// Unix socket to a handler (a thread here, running the same pager as `ignition uffd-handler`).
// Reads see the memory file's pages, holes read as zeros, a page the VMM gave back reads as
// zeros, writes stay private; plus the handshake's format and the refusals.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "memory/guest_memory.hpp"
#include "memory/uffd.hpp"
#include "memory/uffd_pager.hpp"
#include "support/unix_socket.hpp"
#include "vmm/snapshot_memory.hpp"

namespace ignition {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr uint64_t kPage = 4096;
// Two regions with a gap between them, as guest RAM around the MMIO hole.
const std::vector<GuestMemory::Range> kRanges = {{0, 16 * kPage}, {0x100000, 8 * kPage}};
constexpr uint64_t kPages = 24;
// The memory file's pages that hold data; the others are holes.
const std::set<uint64_t> kDataPages = {0, 1, 2, 5, 16, 23};

uint64_t gpa_of(uint64_t file_page) {
  return file_page < 16 ? file_page * kPage : 0x100000 + (file_page - 16) * kPage;
}

std::vector<uint8_t> file_page_contents(uint64_t page) {
  std::vector<uint8_t> bytes(kPage, 0);
  if (!kDataPages.count(page)) return bytes;
  for (uint64_t i = 0; i < kPage; ++i) bytes[i] = static_cast<uint8_t>(page * 7 + i % 251 + 1);
  return bytes;
}

class UffdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "ign-uffd-" + std::to_string(::getpid());
    fs::create_directories(dir_);
    socket_ = dir_ + "/uffd.sock";
    memory_file_ = dir_ + "/memory";
    UniqueFd fd(::open(memory_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::ftruncate(fd.get(), kPages * kPage), 0);
    for (uint64_t page : kDataPages) {
      auto bytes = file_page_contents(page);
      ASSERT_EQ(::pwrite(fd.get(), bytes.data(), kPage, static_cast<off_t>(page * kPage)),
                static_cast<ssize_t>(kPage));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Accepts one VMM on socket_ and serves it until it hangs up.
  std::thread start_handler(UffdPager::Stats& stats, std::string& error) {
    auto listener = test::unix_listen(socket_);
    EXPECT_TRUE(listener.ok());
    return std::thread([this, &stats, &error, listener = std::move(listener).value()] {
      auto run = [&]() -> Result<void> {
        IGN_ASSIGN_OR_RETURN(auto vmm, test::unix_accept(listener.get(), 10s));
        IGN_ASSIGN_OR_RETURN(auto handshake, receive_uffd_handshake(vmm.get()));
        IGN_ASSIGN_OR_RETURN(auto pager, UffdPager::create(memory_file_, std::move(handshake)));
        IGN_TRY(pager.serve_until_hangup(vmm.get()));
        stats = pager.stats();
        return {};
      };
      if (auto r = run(); !r.ok()) error = r.error().message;
    });
  }

  std::string dir_, socket_, memory_file_;
};

TEST_F(UffdTest, HandlerServesFileContentsHolesAsZerosAndRemovedPagesAsZeros) {
  UffdPager::Stats stats;
  std::string handler_error;
  std::thread handler = start_handler(stats, handler_error);
  {
    auto memory = GuestMemory::create_private_anonymous(kRanges);
    ASSERT_TRUE(memory.ok()) << memory.error().message;
    EXPECT_EQ(memory->fd(), -1);
    auto attached = attach_uffd_handler(*memory, socket_);
    ASSERT_TRUE(attached.ok()) << attached.error().message;

    // A write to a page never touched: the handler maps it first, the write lands privately.
    const uint64_t kWritten = 3;
    ASSERT_TRUE(memory->write_obj<uint64_t>(gpa_of(kWritten) + 8, 0x1122334455667788).ok());

    for (uint64_t page = 0; page < kPages; ++page) {
      SCOPED_TRACE(page);
      std::vector<uint8_t> got(kPage);
      ASSERT_TRUE(memory->read(gpa_of(page), got).ok());
      auto want = file_page_contents(page);
      if (page == kWritten) {
        uint64_t v = 0x1122334455667788;
        std::memcpy(want.data() + 8, &v, sizeof(v));
      }
      EXPECT_EQ(got, want);
    }

    // The VMM gives a data page back (the balloon's madvise): the handler hears of it and
    // serves zeros the next time, not the file's page.
    auto page0 = memory->slice(gpa_of(0), kPage);
    ASSERT_TRUE(page0.ok());
    ASSERT_EQ(::madvise(page0->data(), kPage, MADV_DONTNEED), 0);
    std::vector<uint8_t> again(kPage, 0xff);
    ASSERT_TRUE(memory->read(gpa_of(0), again).ok());
    EXPECT_EQ(again, std::vector<uint8_t>(kPage, 0));

    // A snapshot of this memory reads through the handler like any other access.
    std::string saved = dir_ + "/saved";
    ASSERT_TRUE(memory->save(saved).ok());
    std::ifstream in(saved, std::ios::binary);
    std::vector<uint8_t> all((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(all.size(), kPages * kPage);
    EXPECT_EQ(all[1 * kPage + 5], file_page_contents(1)[5]);
    EXPECT_EQ(all[23 * kPage + 100], file_page_contents(23)[100]);
    EXPECT_EQ(all[0], 0) << "the removed page";
    // Dropping the memory closes the connection: the handler ends.
  }
  handler.join();
  EXPECT_EQ(handler_error, "");
  EXPECT_EQ(stats.copied, kDataPages.size());
  // The holes, and page 0 once more after its removal.
  EXPECT_EQ(stats.zeroed, kPages - kDataPages.size() + 1);
  EXPECT_EQ(stats.removes, 1u);
  EXPECT_EQ(stats.faults, stats.copied + stats.zeroed + stats.already_present);
}

TEST_F(UffdTest, DiffSnapshotsAndMissingHandlersAreRefused) {
  auto diff = vmm::load_snapshot_memory_uffd(socket_, {dir_ + "/parent"}, kRanges);
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.error().message.find("diff snapshot"), std::string::npos) << diff.error().message;
  auto nobody = vmm::load_snapshot_memory_uffd(socket_, {}, kRanges);
  ASSERT_FALSE(nobody.ok());
  EXPECT_NE(nobody.error().message.find("cannot connect to the uffd handler"), std::string::npos)
      << nobody.error().message;
}

TEST_F(UffdTest, PagerRefusesAMemoryFileOfAnotherSize) {
  auto uffd = create_userfaultfd();
  ASSERT_TRUE(uffd.ok()) << uffd.error().message;
  UffdHandshake handshake{{{0x7f0000000000, (kPages + 1) * kPage, 0, kPage}},
                          std::move(uffd).value()};
  auto pager = UffdPager::create(memory_file_, std::move(handshake));
  ASSERT_FALSE(pager.ok());
  EXPECT_NE(pager.error().message.find("bytes"), std::string::npos) << pager.error().message;
}

TEST(UffdHandshake, MappingsUseFirecrackersFieldNames) {
  std::vector<UffdMapping> mappings = {{0x7f0000000000, 0x20000, 0, 4096},
                                       {0x7f0000100000, 0x1000, 0x20000, 4096}};
  std::string text = encode_uffd_mappings(mappings);
  auto j = nlohmann::json::parse(text);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["base_host_virt_addr"], 0x7f0000100000u);
  EXPECT_EQ(j[1]["size"], 0x1000u);
  EXPECT_EQ(j[1]["offset"], 0x20000u);
  EXPECT_EQ(j[1]["page_size"], 4096u);
  EXPECT_EQ(j[1]["page_size_kib"], 4096u) << "Firecracker's deprecated name, also in bytes";
  auto back = decode_uffd_mappings(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, mappings);
  // An older Firecracker sends only page_size_kib.
  auto old = decode_uffd_mappings(
      R"([{"base_host_virt_addr": 4096, "size": 8192, "offset": 0, "page_size_kib": 4096}])");
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->at(0).page_size, 4096u);
}

TEST(UffdHandshake, BadMappingsAreRefused) {
  for (const char* bad : {
           "",
           "{}",
           "[]",
           "[1]",
           R"([{"size": 4096, "offset": 0, "page_size": 4096}])",
           R"([{"base_host_virt_addr": "4096", "size": 4096, "offset": 0, "page_size": 4096}])",
           R"([{"base_host_virt_addr": 100, "size": 4096, "offset": 0, "page_size": 4096}])",
           R"([{"base_host_virt_addr": 4096, "size": 0, "offset": 0, "page_size": 4096}])",
           R"([{"base_host_virt_addr": 4096, "size": 4096, "offset": 0, "page_size": 3000}])",
           R"([{"base_host_virt_addr": 18446744073709547520, "size": 8192, "offset": 0,
               "page_size": 4096}])",
       }) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(decode_uffd_mappings(bad).ok());
  }
}

}  // namespace
}  // namespace ignition
