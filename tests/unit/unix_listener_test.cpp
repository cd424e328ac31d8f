// UnixListener: the socket file appears only once it listens, stale files are replaced, live
// listeners and other files are left alone, and the path goes with the listener.
#include "base/unix_listener.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace ignition {
namespace {

namespace fs = std::filesystem;

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "ign-listener-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // What the directory holds besides `keep`: leftovers such as temporary names.
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }

  std::string dir_;
};

TEST_F(UnixListenerTest, AcceptsConnectionsAndRemovesItsPathWhenItGoes) {
  std::string p = path("a.sock");
  {
    auto listener = UnixListener::listen(p, {});
    ASSERT_TRUE(listener.ok()) << listener.error().message;
    EXPECT_EQ(listener->path(), p);
    auto client = connect_unix(p, false);
    ASSERT_TRUE(client.ok()) << client.error().message;
    auto server = listener->accept();
    ASSERT_TRUE(server.ok() && server->has_value());
    ASSERT_EQ(::write(client->get(), "x", 1), 1);
    char c = 0;
    ASSERT_EQ(::read((*server)->get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
    EXPECT_EQ(entries(), 1u) << "no temporary name is left beside the socket";
  }
  EXPECT_FALSE(fs::exists(p));
}

// A client that waits for the file and then connects, as the tests and Firecracker's SDKs
// do, is never refused: the file appears only after listen(). The client polls while the
// listener is being created, which is when a bind-then-listen server refuses it.
TEST_F(UnixListenerTest, TheFileAppearsOnlyOnceTheSocketListens) {
  std::string p = path("race.sock");
  constexpr int kRounds = 500;
  std::atomic<int> reported{0};  // rounds the client has connected in (or been refused)
  std::atomic<int> removed{0};   // rounds whose listener is gone
  std::atomic<int> refused{0};
  std::atomic<bool> stop{false};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto in_time = [&] { return !stop && std::chrono::steady_clock::now() < deadline; };
  std::thread client([&] {
    for (int i = 0; i < kRounds && in_time(); i++) {
      while (removed.load() < i && in_time()) std::this_thread::yield();
      struct stat st {};
      while (::lstat(p.c_str(), &st) != 0 && in_time()) {
      }
      auto c = connect_unix(p, true);
      if (!c.ok()) refused++;
      reported = i + 1;
    }
  });
  int rounds = 0;
  for (; rounds < kRounds && in_time(); rounds++) {
    {
      auto listener = UnixListener::listen(p, {.backlog = 4, .nonblocking = true});
      if (!listener.ok()) {
        ADD_FAILURE() << listener.error().message;
        break;
      }
      while (reported.load() <= rounds && in_time()) std::this_thread::yield();
    }
    removed = rounds + 1;
  }
  stop = true;
  client.join();
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(refused.load(), 0) << "of " << kRounds << " connections";
}

TEST_F(UnixListenerTest, AStaleSocketIsReplacedALiveOneIsNot) {
  std::string p = path("s.sock");
  {
    auto first = UnixListener::listen(p, {});
    ASSERT_TRUE(first.ok());
    auto second = UnixListener::listen(p, {});
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
    EXPECT_TRUE(connect_unix(p, false).ok()) << "the live listener was disturbed";
    // Leave the file behind as a crashed process would: close the socket, keep the path.
    UniqueFd gone = first->release_fd();
    ::link(p.c_str(), path("kept").c_str());
  }
  ::rename(path("kept").c_str(), p.c_str());
  ASSERT_TRUE(fs::is_socket(p));
  auto replaced = UnixListener::listen(p, {});
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_TRUE(connect_unix(p, false).ok());
}

TEST_F(UnixListenerTest, OtherFilesAndBadPathsAreErrors) {
  std::string file = path("plain");
  std::ofstream(file) << "data";
  auto on_file = UnixListener::listen(file, {});
  ASSERT_FALSE(on_file.ok());
  EXPECT_NE(on_file.error().message.find("not a Unix socket"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(file)) << "a file that is not a socket is never removed";

  auto too_long = UnixListener::listen(dir_ + "/" + std::string(120, 'x'), {});
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("must be 1 to"), std::string::npos);

  auto no_dir = UnixListener::listen(path("missing/dir.sock"), {});
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.error().message.find("No such file"), std::string::npos)
      << no_dir.error().message;
  EXPECT_FALSE(connect_unix(path("nobody.sock"), false).ok());
}

// A path too long for a temporary name beside it is still served (bound in place).
TEST_F(UnixListenerTest, APathAtTheLengthLimitStillListens) {
  std::string p = dir_ + "/";
  if (p.size() >= 100) GTEST_SKIP() << "the temporary directory's path is too long";
  p += std::string(107 - p.size(), 'p');
  ASSERT_EQ(p.size(), 107u);
  auto listener = UnixListener::listen(p, {});
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  EXPECT_TRUE(connect_unix(p, false).ok());
}

// The path is removed only if it still names our socket.
TEST_F(UnixListenerTest, APathReplacedMeanwhileIsLeftAlone) {
  std::string p = path("r.sock");
  {
    auto listener = UnixListener::listen(p, {});
    ASSERT_TRUE(listener.ok());
    ASSERT_TRUE(fs::remove(p));
    std::ofstream(p) << "someone else's";
  }
  EXPECT_TRUE(fs::is_regular_file(p));
}

}  // namespace
}  // namespace ignition
