#include "vmm/cpu_template.hpp"

#include <gtest/gtest.h>

namespace ignition::vmm {
namespace {

TEST(CpuTemplate, AppliesCpuidAndMsrBitmaps) {
  std::vector<hv::CpuidEntry> cpuid = {{0x1, 0, 0, 0x11, 0x22, 0xffff0000, 0x0000ffff}};
  std::vector<hv::Msr> msrs = {{0x1a0, 0x1}};
  config::CpuConfig tmpl;
  // Clear ECX bit 31 and set bit 0; set EDX bit 16.
  tmpl.cpuid_modifiers.push_back({0x1,
                                  0,
                                  0,
                                  {{config::CpuidRegister::kEcx, {0x80000001, 0x00000001}},
                                   {config::CpuidRegister::kEdx, {0x00010000, 0x00010000}}}});
  tmpl.cpuid_modifiers.push_back({0x40000010, 0, 0, {{config::CpuidRegister::kEax, {0xff, 0x42}}}});
  tmpl.msr_modifiers.push_back({0x1a0, {0x3, 0x2}});
  tmpl.msr_modifiers.push_back({0x10, {~0ULL, 7}});
  apply_cpu_template(tmpl, cpuid, msrs);

  ASSERT_EQ(cpuid.size(), 2u);
  EXPECT_EQ(cpuid[0].ecx, 0x7fff0001u);
  EXPECT_EQ(cpuid[0].edx, 0x0001ffffu);
  EXPECT_EQ(cpuid[0].eax, 0x11u) << "untouched registers stay";
  EXPECT_EQ(cpuid[1].function, 0x40000010u);
  EXPECT_EQ(cpuid[1].eax, 0x42u);
  ASSERT_EQ(msrs.size(), 2u);
  EXPECT_EQ(msrs[0].value, 0x2u);
  EXPECT_EQ(msrs[1].index, 0x10u);
  EXPECT_EQ(msrs[1].value, 7u);
}

}  // namespace
}  // namespace ignition::vmm
