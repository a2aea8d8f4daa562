// Public header of the auth component (see gss.hpp).
#pragma once

#include "auth/gss.hpp"
