// Helpers of the import tests: the shared temporary directory and one-line-error helpers.
#pragma once

#include "tests/common/test_util.hpp"

namespace dsa::import::test {

using dsa::testing::TempDir;
using dsa::testing::error_of;

}  // namespace dsa::import::test
