#ifndef CONVEYOR_CHDF5_SHIM_H
#define CONVEYOR_CHDF5_SHIM_H
#include <hdf5.h>
/* HDF5 exposes its predefined types and defaults as macros over globals that
   Swift cannot import; these inline functions hand them over. */
static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_c_s1(void) { return H5T_C_S1; }
static inline hid_t chdf5_p_default(void) { return H5P_DEFAULT; }
/* The file-access property list class, for opening a file image in memory. */
static inline hid_t chdf5_p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t chdf5_e_default(void) { return H5E_DEFAULT; }
static inline hid_t chdf5_s_all(void) { return H5S_ALL; }
static inline size_t chdf5_variable(void) { return H5T_VARIABLE; }
/* H5F_ACC_RDONLY expands to a call to H5open() followed by the flag value. */
static inline unsigned chdf5_acc_rdonly(void) { return H5F_ACC_RDONLY; }
#endif
