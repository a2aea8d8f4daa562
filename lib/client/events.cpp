#include "client/client.hpp"
#include "wsman/bookmark.hpp"

#include <array>
#include <cstdio>

namespace wec::client {

namespace {

constexpr std::array<const char*, 8> kUsers = {"alice", "bob",    "svc_backup",     "carol.admin",
                                               "dave",  "SYSTEM", "eve.contractor", "WIN10$"};
constexpr std::array<const char*, 6> kProcesses = {
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "C:\\Program Files\\Mozilla Firefox\\firefox.exe",
    "C:\\Windows\\System32\\conhost.exe",
    "C:\\Windows\\explorer.exe"};
constexpr std::array<const char*, 5> kWorkstations = {"WIN10", "LAPTOP-7F3K", "SRV-FILE01", "DC01",
                                                      "-"};

void append_hex(std::string& out, std::uint64_t v, int width) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%0*llx", width, static_cast<unsigned long long>(v));
    out += buf;
}

} // namespace

EventGenerator::EventGenerator(std::string computer, std::uint64_t seed, std::uint64_t first_record)
    : computer_(std::move(computer)), state_(seed * 0x9E3779B97F4A7C15ull + 1),
      record_(first_record) {}

std::uint64_t EventGenerator::rand() {
    // splitmix64: fast, deterministic, good enough for test data.
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::string EventGenerator::next() {
    std::uint64_t r = rand();
    bool logon = (r & 3) != 0; // 3/4 logons, 1/4 process creations
    std::uint64_t record = record_++;
    ++tick_;
    std::uint64_t ms = 1700000000000ull + tick_ * 37 + (r >> 50);
    std::uint64_t secs = ms / 1000;
    char time[64];
    std::snprintf(time, sizeof time, "2023-11-%02lluT%02llu:%02llu:%02llu.%03lluZ",
                  static_cast<unsigned long long>(14 + (secs / 86400) % 14),
                  static_cast<unsigned long long>((secs / 3600) % 24),
                  static_cast<unsigned long long>((secs / 60) % 60),
                  static_cast<unsigned long long>(secs % 60),
                  static_cast<unsigned long long>(ms % 1000));
    std::string when(time);
    const char* user = kUsers[(r >> 8) % kUsers.size()];
    std::uint64_t logon_id = 0x3e7 + ((r >> 16) & 0xFFFFFF);
    unsigned pid = 4 + static_cast<unsigned>((r >> 24) & 0x3FFC);
    unsigned tid = 8 + static_cast<unsigned>((r >> 36) & 0x3FFC);

    std::string e;
    e.reserve(1600);
    e += "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
         "<Provider Name='Microsoft-Windows-Security-Auditing' "
         "Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>"
         "<EventID>";
    e += logon ? "4624" : "4688";
    e += "</EventID><Version>";
    e += logon ? "2" : "2";
    e += "</Version><Level>0</Level><Task>";
    e += logon ? "12544" : "13312";
    e +=
        "</Task><Opcode>0</Opcode><Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime='";
    e += when;
    e += "'/><EventRecordID>";
    e += std::to_string(record);
    e += "</EventRecordID><Correlation ActivityID='{a1c7e1d2-3b4f-0001-2f1c-c7a14f3bd901}'/>"
         "<Execution ProcessID='";
    e += std::to_string(logon ? 652 : pid);
    e += "' ThreadID='";
    e += std::to_string(tid);
    e += "'/><Channel>Security</Channel><Computer>";
    e += computer_;
    e += "</Computer><Security/></System><EventData>";
    auto data = [&e](const char* name, const std::string& value) {
        e += "<Data Name='";
        e += name;
        e += "'>";
        e += value;
        e += "</Data>";
    };
    std::string logon_hex;
    append_hex(logon_hex, logon_id, 0);
    std::string message;
    if (logon) {
        unsigned type = std::array<unsigned, 4>{2, 3, 3, 10}[(r >> 40) & 3];
        std::string ip = "10." + std::to_string((r >> 44) & 0xFF) + "." +
                         std::to_string((r >> 52) & 0xFF) + "." +
                         std::to_string(1 + ((r >> 56) % 254));
        const char* ws = kWorkstations[(r >> 12) % kWorkstations.size()];
        data("SubjectUserSid", "S-1-5-18");
        data("SubjectUserName", computer_.substr(0, computer_.find('.')) + "$");
        data("SubjectDomainName", "WINDOMAIN");
        data("SubjectLogonId", "0x3e7");
        data("TargetUserSid",
             "S-1-5-21-3623811015-3361044348-30300820-" + std::to_string(1000 + (r >> 8) % 8));
        data("TargetUserName", user);
        data("TargetDomainName", "WINDOMAIN");
        data("TargetLogonId", logon_hex);
        data("LogonType", std::to_string(type));
        data("LogonProcessName", type == 3 ? "NtLmSsp " : "User32 ");
        data("AuthenticationPackageName", type == 3 ? "Kerberos" : "Negotiate");
        data("WorkstationName", ws);
        data("LogonGuid", "{00000000-0000-0000-0000-000000000000}");
        data("ProcessId", "0x28c");
        data("ProcessName", "C:\\Windows\\System32\\lsass.exe");
        data("IpAddress", ip);
        data("IpPort", std::to_string(49152 + ((r >> 20) & 0x3FFF)));
        data("ImpersonationLevel", "%%1833");
        data("ElevatedToken", (r >> 30) & 1 ? "%%1842" : "%%1843");
        message = "An account was successfully logged on.\r\n\r\nSubject:\r\n\tSecurity "
                  "ID:\t\tSYSTEM\r\n\t"
                  "Account Name:\t\t" +
                  computer_.substr(0, computer_.find('.')) +
                  "$\r\n\tAccount Domain:\t\tWINDOMAIN\r\n\r\n"
                  "Logon Information:\r\n\tLogon Type:\t\t" +
                  std::to_string(type) + "\r\n\r\nNew Logon:\r\n\tAccount Name:\t\t" + user +
                  "\r\n\tLogon ID:\t\t" + logon_hex +
                  "\r\n\r\nNetwork Information:\r\n\tWorkstation Name:\t" + ws +
                  "\r\n\tSource Network Address:\t" + ip +
                  "\r\n\r\nThis event is generated when a logon session is created.";
    } else {
        const char* exe = kProcesses[(r >> 12) % kProcesses.size()];
        const char* parent = kProcesses[(r >> 20) % kProcesses.size()];
        std::string new_pid, parent_pid;
        append_hex(new_pid, pid, 0);
        append_hex(parent_pid, 4 + ((r >> 44) & 0x3FFC), 0);
        data("SubjectUserSid",
             "S-1-5-21-3623811015-3361044348-30300820-" + std::to_string(1000 + (r >> 8) % 8));
        data("SubjectUserName", user);
        data("SubjectDomainName", "WINDOMAIN");
        data("SubjectLogonId", logon_hex);
        data("NewProcessId", new_pid);
        data("NewProcessName", exe);
        data("TokenElevationType", "%%1938");
        data("ProcessId", parent_pid);
        data("CommandLine", std::string("\"") + exe + "\" -k netsvcs -p -s Schedule /id " +
                                std::to_string(r % 100000));
        data("TargetUserSid", "S-1-0-0");
        data("TargetUserName", "-");
        data("TargetDomainName", "-");
        data("TargetLogonId", "0x0");
        data("ParentProcessName", parent);
        data("MandatoryLabel", "S-1-16-8192");
        message =
            std::string(
                "A new process has been created.\r\n\r\nCreator Subject:\r\n\tAccount Name:\t\t") +
            user + "\r\n\tAccount Domain:\t\tWINDOMAIN\r\n\tLogon ID:\t\t" + logon_hex +
            "\r\n\r\nProcess Information:\r\n\tNew Process ID:\t\t" + new_pid +
            "\r\n\tNew Process Name:\t" + exe + "\r\n\tCreator Process Name:\t" + parent +
            "\r\n\r\nToken Elevation Type indicates the type of token that was assigned to the new "
            "process.";
    }
    e += "</EventData><RenderingInfo Culture='en-US'><Message>";
    e += message;
    e += "</Message><Level>Information</Level><Task>";
    e += logon ? "Logon" : "Process Creation";
    e += "</Task><Opcode>Info</Opcode><Channel>Security</Channel><Provider>Microsoft Windows "
         "security auditing."
         "</Provider><Keywords><Keyword>Audit Success</Keyword></Keywords></RenderingInfo></Event>";
    return e;
}

std::string EventGenerator::bookmark() const {
    return security_bookmark(record_ - 1);
}

std::string security_bookmark(std::uint64_t record) {
    return wsman::bookmark_list({{{"Security", record}}, "Security"});
}

} // namespace wec::client
