// A group chat over abcast, in C++: every line typed at one member is shown at every
// member, in the same order everywhere. Copy the small RAII wrapper below to start
// your own C++ program.
//
//   chat ID MEMBERS
//
//   chat 1 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//   (and members 2 and 3 in two other terminals)
//
// Each line of standard input is broadcast; every delivered message is printed on
// standard output as "ID: text", membership changes on standard error. At the end of
// standard input the member leaves (after its own lines are delivered).
//
// Build:  c++ -std=c++11 chat.cpp $(pkg-config --cflags --libs abcast) -o chat
//
// Deliveries come through the callback API (abcast_node_start_with_callback): the
// library calls it on its own thread, so the main thread can block in abcast_broadcast.

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "abcast.h"

namespace abcastpp {

// A failed call: the status and abcast_last_error()'s text.
class Error : public std::runtime_error {
  public:
    Error(abcast_status status, const std::string &what)
        : std::runtime_error(what), status_(status) {}
    abcast_status status() const { return status_; }

  private:
    abcast_status status_;
};

inline void check(abcast_status st) {
    if (st != ABCAST_OK) throw Error(st, abcast_last_error());
}

class Config {
  public:
    explicit Config(std::uint32_t self_id) : cfg_(abcast_config_new(self_id)) {
        if (!cfg_) throw Error(ABCAST_INTERNAL_ERROR, abcast_last_error());
    }
    Config &member(std::uint32_t id, const std::string &host_port) {
        check(abcast_config_add_member(cfg_.get(), id, host_port.c_str()));
        return *this;
    }
    Config &buffering(abcast_buffering mode) {
        check(abcast_config_set_buffering(cfg_.get(), mode));
        return *this;
    }
    const abcast_config *get() const { return cfg_.get(); }

  private:
    struct Free {
        void operator()(abcast_config *c) const { abcast_config_free(c); }
    };
    std::unique_ptr<abcast_config, Free> cfg_;
};

// A member whose events go to a std::function, called on the library's delivery
// thread. The destructor leaves the group and frees the node.
class Node {
  public:
    using Handler = std::function<void(const abcast_event &)>;

    Node(const Config &cfg, Handler handler) : handler_(new Handler(std::move(handler))) {
        check(abcast_node_start_with_callback(cfg.get(), &Node::trampoline, handler_.get(),
                                              &node_));
    }
    ~Node() { abcast_node_stop(node_); } // then handler_ is freed: no callback after stop
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;

    void broadcast(const std::string &msg) {
        check(abcast_broadcast(node_, reinterpret_cast<const std::uint8_t *>(msg.data()),
                               msg.size()));
    }
    // Leaves now (the destructor would too); later calls report ABCAST_STOPPED.
    void leave() { check(abcast_node_leave(node_)); }

  private:
    // C calls this: no exception may escape into the library.
    static void trampoline(void *userdata, const abcast_event *ev) {
        try {
            (*static_cast<Handler *>(userdata))(*ev);
        } catch (const std::exception &e) {
            std::cerr << "chat: event handler failed: " << e.what() << "\n";
        } catch (...) {
            std::cerr << "chat: event handler failed\n";
        }
    }

    std::unique_ptr<Handler> handler_;
    abcast_node *node_ = nullptr;
};

} // namespace abcastpp

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " ID ID=HOST:PORT,ID=HOST:PORT,...\n";
        return 2;
    }
    try {
        const std::uint32_t self = static_cast<std::uint32_t>(std::strtoul(argv[1], nullptr, 10));
        abcastpp::Config cfg(self);
        std::stringstream members(argv[2]);
        std::string item;
        while (std::getline(members, item, ',')) {
            const std::string::size_type eq = item.find('=');
            if (eq == std::string::npos) throw std::runtime_error("bad member `" + item + "`");
            cfg.member(static_cast<std::uint32_t>(std::stoul(item.substr(0, eq))),
                       item.substr(eq + 1));
        }

        std::mutex out; // the handler runs on another thread than main
        abcastpp::Node node(cfg, [&out](const abcast_event &ev) {
            std::lock_guard<std::mutex> lock(out);
            switch (ev.kind) {
            case ABCAST_EVENT_DELIVER:
                // ev.data is valid only during the callback: copy what you keep.
                std::cout << ev.origin << ": "
                          << std::string(reinterpret_cast<const char *>(ev.data), ev.len)
                          << std::endl;
                break;
            case ABCAST_EVENT_MEMBER_LEFT:
                std::cerr << "* member " << ev.member << " left\n";
                break;
            case ABCAST_EVENT_MEMBER_JOINED:
                std::cerr << "* member " << ev.member << " joined\n";
                break;
            case ABCAST_EVENT_RELAYER_CHANGED:
                std::cerr << "* member " << ev.member << " now relays (epoch " << ev.epoch
                          << ")\n";
                break;
            case ABCAST_EVENT_EXCLUDED:
                std::cerr << "* excluded from the group\n";
                break;
            default:
                break;
            }
        });

        std::string line;
        while (std::getline(std::cin, line)) node.broadcast(line);
        node.leave(); // waits until this member's own lines are delivered
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "chat: " << e.what() << "\n";
        return 1;
    }
}
