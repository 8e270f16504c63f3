# Installs the libraries, the headers (under include/qilin/) and a CMake
# package so that an outside project can find_package(qilin) and link qilin::qilin.
include(CMakePackageConfigHelpers)

install(TARGETS qilin ${QILIN_LAYER_TARGETS} EXPORT qilinTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir core kernels models)
  if(NOT IS_DIRECTORY ${PROJECT_SOURCE_DIR}/${dir})
    continue()
  endif()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qilin/${dir}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT qilinTargets NAMESPACE qilin:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qilin)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/qilinConfig.cmake.in
  ${PROJECT_BINARY_DIR}/qilinConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qilin)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/qilinConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/qilinConfig.cmake ${PROJECT_BINARY_DIR}/qilinConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qilin)
