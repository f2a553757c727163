# NCCL ships no CMake config: find the header and library into an imported target.
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib /usr/local/cuda/lib64)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  add_library(dsa_nccl UNKNOWN IMPORTED)
  set_target_properties(dsa_nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  set(DSA_HAVE_NCCL ON)
else()
  set(DSA_HAVE_NCCL OFF)
  message(STATUS "NCCL not found: GPU results are gathered through MPI")
endif()
