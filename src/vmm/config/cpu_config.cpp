// Custom CPU template parsing and serialization.
#include "vmm/config/cpu_config.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

Result<std::string> string_value(const nlohmann::json& j, std::string_view field) {
  if (!j.is_string()) return type_error(field, "a string", j);
  return j.get<std::string>();
}

// "0x1f", "0b101" or "31", no larger than UINT32_MAX.
Result<uint32_t> parse_u32_text(std::string_view field, std::string_view text) {
  unsigned base = 10;
  std::string_view digits = text;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    base = 16;
    digits.remove_prefix(2);
  } else if (text.starts_with("0b") || text.starts_with("0B")) {
    base = 2;
    digits.remove_prefix(2);
  }
  if (digits.empty()) return err("field '{}' is not a number: '{}'", field, text);
  uint64_t value = 0;
  for (char c : digits) {
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      d = 16;
    }
    if (d >= base) return err("field '{}' is not a number: '{}'", field, text);
    value = value * base + d;
    if (value > UINT32_MAX) return err("field '{}' does not fit in 32 bits: '{}'", field, text);
  }
  return static_cast<uint32_t>(value);
}

Result<BitFilter> parse_bitmap(std::string_view text, unsigned bits) {
  std::string_view body = text;
  if (body.starts_with("0b")) body.remove_prefix(2);
  BitFilter f;
  unsigned bit = 0;
  // Read from the right: the last character is bit 0; missing high bits are 'x'.
  for (auto it = body.rbegin(); it != body.rend(); ++it) {
    if (*it == '_') continue;
    if (bit == bits) {
      return err("field 'bitmap' has more than {} bits: '{}'", bits, text);
    }
    switch (*it) {
      case 'x':
        break;
      case '0':
        f.filter |= uint64_t{1} << bit;
        break;
      case '1':
        f.filter |= uint64_t{1} << bit;
        f.value |= uint64_t{1} << bit;
        break;
      default:
        return err("field 'bitmap' has an invalid character '{}' (expected 0, 1, x or _): '{}'",
                   *it, text);
    }
    ++bit;
  }
  return f;
}

std::string bitmap_text(const BitFilter& f, unsigned bits) {
  std::string s = "0b";
  for (unsigned i = bits; i-- > 0;) {
    uint64_t m = uint64_t{1} << i;
    s += (f.filter & m) ? ((f.value & m) ? '1' : '0') : 'x';
  }
  return s;
}

Result<KvmCapabilityModifier> parse_kvm_capability(const nlohmann::json& j) {
  // Read through a reference: gcc 12 -O2 warns (falsely) about a moved-out std::string here.
  auto text = string_value(j, "kvm_capabilities");
  if (!text.ok()) return text.error();
  const std::string& s = *text;
  KvmCapabilityModifier m;
  std::string_view digits = s;
  if (digits.starts_with('!')) {
    m.remove = true;
    digits.remove_prefix(1);
  }
  bool decimal = !digits.empty();
  for (char c : digits) decimal = decimal && c >= '0' && c <= '9';
  if (!decimal) return err("invalid KVM capability '{}': expected a number, '!' to remove", s);
  IGN_ASSIGN_OR_RETURN(m.capability, parse_u32_text("kvm_capabilities", digits));
  return m;
}

Result<CpuidRegisterModifier> parse_cpuid_register_modifier(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"register", "bitmap"}));
  CpuidRegisterModifier m;
  IGN_ASSIGN_OR_RETURN(std::string reg, r.required_string("register"));
  IGN_ASSIGN_OR_RETURN(m.reg, parse_enum<CpuidRegister>("register", reg,
                                                        {{"eax", CpuidRegister::kEax},
                                                         {"ebx", CpuidRegister::kEbx},
                                                         {"ecx", CpuidRegister::kEcx},
                                                         {"edx", CpuidRegister::kEdx}}));
  IGN_ASSIGN_OR_RETURN(std::string bitmap, r.required_string("bitmap"));
  IGN_ASSIGN_OR_RETURN(m.bitmap, parse_bitmap(bitmap, 32));
  return m;
}

Result<CpuidLeafModifier> parse_cpuid_leaf_modifier(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"leaf", "subleaf", "flags", "modifiers"}));
  CpuidLeafModifier m;
  IGN_ASSIGN_OR_RETURN(std::string leaf, r.required_string("leaf"));
  IGN_ASSIGN_OR_RETURN(m.leaf, parse_u32_text("leaf", leaf));
  IGN_ASSIGN_OR_RETURN(std::string subleaf, r.required_string("subleaf"));
  IGN_ASSIGN_OR_RETURN(m.subleaf, parse_u32_text("subleaf", subleaf));
  IGN_ASSIGN_OR_RETURN(m.flags, r.required_uint<uint32_t>("flags"));
  if (!r.has("modifiers")) return err("missing required field 'modifiers'");
  IGN_ASSIGN_OR_RETURN(m.modifiers, r.array_with("modifiers", parse_cpuid_register_modifier));
  return m;
}

Result<MsrModifier> parse_msr_modifier(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"addr", "bitmap"}));
  MsrModifier m;
  IGN_ASSIGN_OR_RETURN(std::string addr, r.required_string("addr"));
  IGN_ASSIGN_OR_RETURN(m.addr, parse_u32_text("addr", addr));
  IGN_ASSIGN_OR_RETURN(std::string bitmap, r.required_string("bitmap"));
  IGN_ASSIGN_OR_RETURN(m.bitmap, parse_bitmap(bitmap, 64));
  return m;
}

}  // namespace

std::string_view to_string(CpuidRegister r) {
  switch (r) {
    case CpuidRegister::kEax:
      return "eax";
    case CpuidRegister::kEbx:
      return "ebx";
    case CpuidRegister::kEcx:
      return "ecx";
    case CpuidRegister::kEdx:
      return "edx";
  }
  return "eax";
}

Result<CpuConfig> parse_cpu_config(const nlohmann::json& j) {
  if (j.is_object()) {
    for (std::string_view arm : {"reg_modifiers", "vcpu_features"}) {
      if (j.contains(arm)) return err("field '{}' is aarch64-only; this VMM is x86_64", arm);
    }
  }
  IGN_ASSIGN_OR_RETURN(
      auto r, FieldReader::open(j, {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers"}));
  CpuConfig c;
  IGN_ASSIGN_OR_RETURN(c.kvm_capabilities, r.array_with("kvm_capabilities", parse_kvm_capability));
  IGN_ASSIGN_OR_RETURN(c.cpuid_modifiers,
                       r.array_with("cpuid_modifiers", parse_cpuid_leaf_modifier));
  IGN_ASSIGN_OR_RETURN(c.msr_modifiers, r.array_with("msr_modifiers", parse_msr_modifier));
  return c;
}

nlohmann::json to_json(const CpuConfig& c) {
  nlohmann::json caps = nlohmann::json::array();
  for (const auto& k : c.kvm_capabilities) {
    caps.push_back(fmt::format("{}{}", k.remove ? "!" : "", k.capability));
  }
  nlohmann::json leaves = nlohmann::json::array();
  for (const auto& l : c.cpuid_modifiers) {
    nlohmann::json mods = nlohmann::json::array();
    for (const auto& m : l.modifiers) {
      mods.push_back({{"register", to_string(m.reg)}, {"bitmap", bitmap_text(m.bitmap, 32)}});
    }
    leaves.push_back({{"leaf", fmt::format("{:#x}", l.leaf)},
                      {"subleaf", fmt::format("{:#x}", l.subleaf)},
                      {"flags", l.flags},
                      {"modifiers", mods}});
  }
  nlohmann::json msrs = nlohmann::json::array();
  for (const auto& m : c.msr_modifiers) {
    msrs.push_back({{"addr", fmt::format("{:#x}", m.addr)}, {"bitmap", bitmap_text(m.bitmap, 64)}});
  }
  return {{"kvm_capabilities", caps}, {"cpuid_modifiers", leaves}, {"msr_modifiers", msrs}};
}

}  // namespace ignition::config
